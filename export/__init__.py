"""Export of trained models to ONNX (the runtime's format) and TorchScript, with parity checks."""

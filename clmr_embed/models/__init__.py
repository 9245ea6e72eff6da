"""Models shipped inside the package (ONNX files with clmr.* metadata)."""

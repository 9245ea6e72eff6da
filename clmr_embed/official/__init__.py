"""Torch-free checkpoints: read torch files, import CLMR layouts, build ONNX, fetch the release."""

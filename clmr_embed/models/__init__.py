"""Bundled ONNX models (package data): the default tagger `clmr-free.onnx` (docs/models.md)."""

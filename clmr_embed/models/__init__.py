"""Bundled ONNX models (package data): the untrained placeholder `clmr-untrained.onnx`."""

"""ONNX export of encoders, taggers and heads, with the clmr.* metadata contract in each file."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import onnx
import torch
from torch import nn

from clmr_embed.artifact import ENCODER_IO, HEAD_IO, TAGGER_IO, GraphIO, ModelInfo
from export.conv2d import SampleCNN2d
from training.samplecnn import SampleCNN, Tagger, TaggerHead

# Opset 18 is the torch.export-based exporter's native opset (>= 17 for every op used here).
OPSET = 18
EXAMPLE_BATCH = 2  # a batch of 1 would let torch.export specialise the batch axis to 1


@contextmanager
def _quiet_exporter() -> Iterator[None]:
    # The exporter logs "torchvision is not installed. Skipping torchvision::nms" and the like,
    # and trips pytree's LeafSpec deprecation itself; neither concerns SampleCNN.
    logger = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*treespec, LeafSpec.*")
            yield
    finally:
        logger.setLevel(level)


def example_audio(encoder: SampleCNN, batch: int = EXAMPLE_BATCH) -> torch.Tensor:
    """A zero batch of audio windows shaped like the encoder's input: (batch, 1, window) float32."""
    return torch.zeros(batch, 1, encoder.config.window_samples)


def export_module(
    module: nn.Module, example: torch.Tensor, path: Path, io: GraphIO, info: ModelInfo
) -> None:
    """Export `module` to one self-contained ONNX file with a dynamic batch axis and metadata.

    Args:
        module: a torch module taking one float32 tensor (batch, ...).
        example: an example input with batch size > 1.
        path: the .onnx file to write (callers publish it atomically, see clmr_embed.atomic).
        io: input/output names.
        info: the artifact's ModelInfo, written as `clmr.*` metadata_props.
    """
    module = module.eval()
    batch = torch.export.Dim("batch", min=1)
    with _quiet_exporter():
        program = torch.onnx.export(
            module,
            (example,),
            dynamo=True,  # the torch.export-based exporter; the TorchScript one is deprecated
            external_data=False,  # one self-contained file (SampleCNN is ~9.5 MB)
            input_names=list(io.inputs),
            output_names=list(io.outputs),
            opset_version=OPSET,
            dynamic_shapes=({0: batch},),
            verbose=False,
        )
    if program is None:  # only None when f= is given; keeps the type checker honest
        raise RuntimeError("torch.onnx.export returned no ONNX program")
    model = program.model_proto
    for node in model.graph.node:
        # The exporter records stack traces with absolute source paths per node: drop them so
        # the file is reproducible and leaks no local paths.
        del node.metadata_props[:]
    onnx.helper.set_model_props(model, info.to_metadata())
    model.doc_string = info.description
    onnx.checker.check_model(model, full_check=True)
    onnx.save_model(model, str(path))


def export_encoder(encoder: SampleCNN, path: Path, info: ModelInfo) -> None:
    """Write an encoder ONNX: `audio` (batch, 1, window) -> `embedding` (batch, D), float32."""
    graph = SampleCNN2d(encoder).eval()
    export_module(graph, example_audio(encoder), path, ENCODER_IO, info)


def export_tagger(encoder: SampleCNN, head: TaggerHead, path: Path, info: ModelInfo) -> None:
    """Write a tagger ONNX: `audio` -> `embedding` (batch, D) and `logits` (batch, n), float32."""
    graph = Tagger(SampleCNN2d(encoder), head).eval()
    export_module(graph, example_audio(encoder), path, TAGGER_IO, info)


def export_head(head: TaggerHead, path: Path, info: ModelInfo) -> None:
    """Write a head-only ONNX: `embedding` (batch, D) -> `logits` (batch, n), float32."""
    example = torch.zeros(EXAMPLE_BATCH, head.config.in_dim)
    export_module(head.eval(), example, path, HEAD_IO, info)

"""ONNX files of torch modules: their weights as arrays, through the one graph builder.

The graph itself is built by clmr_embed.official.graph (the torch-free import of the official
release writes the same graph); this module only takes the weights out of the modules.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnx
from torch import nn

from clmr_embed.artifact import ARCHITECTURES, ModelInfo
from clmr_embed.official.graph import build_model
from clmr_embed.official.weights import Arrays, Weights
from training.cpc import CPCEncoder
from training.samplecnn import SampleCNN, TaggerHead


def _arrays(module: nn.Module) -> Arrays:
    return {k: v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()}


def module_weights(encoder: SampleCNN | CPCEncoder | None, head: TaggerHead | None) -> Weights:
    """The modules' weights in the builder's form (eval-mode BatchNorm statistics included)."""
    weights = Weights(source="clmr-embed")
    if isinstance(encoder, CPCEncoder):
        weights.encoder = _arrays(encoder)
        weights.architecture = ARCHITECTURES[1]
        weights.sample_rate = encoder.config.sample_rate
        weights.window_samples = encoder.config.window_samples
    elif encoder is not None:
        weights.encoder = _arrays(encoder)
        weights.channels = tuple(encoder.config.channels)
        weights.sample_rate = encoder.config.sample_rate
    if head is not None:
        cfg = head.config
        weights.head = {k: np.asarray(v, np.float32) for k, v in _arrays(head).items()}
        weights.head_dims = (cfg.in_dim, cfg.hidden_dim, cfg.n_labels)
    return weights


def export_modules(
    encoder: SampleCNN | CPCEncoder | None, head: TaggerHead | None, path: Path, info: ModelInfo
) -> None:
    """Write one self-contained ONNX file of `info.kind` with dynamic batch and metadata.

    Args:
        encoder: the SampleCNN or CPCEncoder (for an encoder or tagger).
        head: the TaggerHead (for a tagger or head).
        path: the .onnx file to write (callers publish it atomically, see clmr_embed.atomic).
        info: the artifact's ModelInfo, written as `clmr.*` metadata_props.
    """
    onnx.save_model(build_model(module_weights(encoder, head), info), str(path))


def export_encoder(encoder: SampleCNN, path: Path, info: ModelInfo) -> None:
    """Write an encoder ONNX: `audio` (batch, 1, window) -> `embedding` (batch, D), float32."""
    export_modules(
        encoder, None, path, dataclasses.replace(info, kind="encoder", labels=(), task="")
    )


def export_tagger(encoder: SampleCNN, head: TaggerHead, path: Path, info: ModelInfo) -> None:
    """Write a tagger ONNX: `audio` -> `embedding` (batch, D) and `logits` (batch, n), float32."""
    export_modules(encoder, head, path, info)


def export_head(head: TaggerHead, path: Path, info: ModelInfo) -> None:
    """Write a head-only ONNX: `embedding` (batch, D) -> `logits` (batch, n), float32."""
    export_modules(None, head, path, dataclasses.replace(info, kind="head"))

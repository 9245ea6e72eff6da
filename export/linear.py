"""The ONNX step of `train linear` that needs torch (training.linear.run.OnnxExport): the tagger."""

from __future__ import annotations

from pathlib import Path

from clmr_embed.errors import CheckpointError
from export.compose import compose_tagger
from training.checkpoint import Checkpoint


class LinearExport:
    """Merges an encoder (or tagger) ONNX with a trained head."""

    def tagger(self, encoder: Path, head: Checkpoint, output: Path, name: str) -> Path:
        """`compose_tagger` with the head's own labels and task."""
        if head.head_config is None or head.labels is None:
            raise CheckpointError("the head checkpoint has no head_config/labels; train a head")
        task = head.head_config.task
        return compose_tagger(encoder, head, output, head.labels, task, name)

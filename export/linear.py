"""The ONNX steps of `train linear` (training.linear.run.OnnxExport): encoder and tagger files."""

from __future__ import annotations

from pathlib import Path

from clmr_embed.errors import CheckpointError
from export.api import ExportConfig, run_export
from export.compose import compose_tagger
from training.checkpoint import Checkpoint


class LinearExport:
    """Exports a checkpoint's encoder, and merges an encoder ONNX with a trained head."""

    def encoder(self, checkpoint: Path, output_dir: Path, name: str) -> Path:
        """`run_export` of the checkpoint into output_dir; returns `<name>-encoder.onnx`."""
        run_export(
            ExportConfig(checkpoint=checkpoint, output_dir=output_dir, name=name, force=True)
        )
        return output_dir / f"{name}-encoder.onnx"

    def tagger(self, encoder: Path, head: Checkpoint, output: Path, name: str) -> Path:
        """`compose_tagger` with the head's own labels and task."""
        if head.head_config is None or head.labels is None:
            raise CheckpointError("the head checkpoint has no head_config/labels; train a head")
        task = head.head_config.task
        return compose_tagger(encoder, head, output, head.labels, task, name)

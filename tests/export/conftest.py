"""Export fixtures: random SampleCNN checkpoints, and one full-width export per test session.

torch is imported inside the fixtures, so this folder still collects (and its torch tests skip
themselves) where torch is not installed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Reduced widths for tests where the width does not matter (~20x fewer weights).
SMALL_CHANNELS = (8, 8, 8, 16, 16, 16, 16, 16, 16, 32, 32)


def random_encoder(channels: tuple[int, ...] | None, seed: int) -> Any:
    """A seeded SampleCNN in eval mode with non-trivial BatchNorm statistics and affine terms,
    so that BatchNorm folding in the exported graphs is actually exercised."""
    import torch

    from training.config import EncoderConfig
    from training.samplecnn import SampleCNN

    torch.manual_seed(seed)
    encoder = SampleCNN(EncoderConfig(channels=channels) if channels else EncoderConfig())
    with torch.no_grad():
        for module in encoder.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                assert module.running_mean is not None and module.running_var is not None
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    return encoder.eval()


def random_head(seed: int, **config: Any) -> Any:
    """A seeded TaggerHead(HeadConfig(**config)) in eval mode."""
    import torch

    from training.config import HeadConfig
    from training.samplecnn import TaggerHead

    torch.manual_seed(seed)
    return TaggerHead(HeadConfig(**config)).eval()


@dataclass(frozen=True)
class Exported:
    """A finished `run_export` and what went into it."""

    report: Any  # the ExportReport run_export returned
    checkpoint: Path  # the encoder checkpoint file (clmr-embed format)
    head_file: Path  # the separate head file (official finetuner layout)
    output_dir: Path  # where the artifacts are
    encoder: Any  # the torch SampleCNN the checkpoint holds
    head: Any  # the torch TaggerHead the head file holds


@pytest.fixture(scope="session")
def full_export(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    """Full-width encoder (our checkpoint) + 50-tag head (official layout), exported once."""
    torch = pytest.importorskip("torch")
    from export.api import ExportConfig, run_export
    from training.checkpoint import Checkpoint, save_checkpoint

    root = tmp_path_factory.mktemp("full-export")
    encoder = random_encoder(None, seed=1)
    checkpoint = root / "run.pt"
    state = Checkpoint(encoder_config=encoder.config, encoder_state=encoder.state_dict(), step=10)
    save_checkpoint(checkpoint, state)
    head = random_head(seed=2)
    head_file = root / "finetuner.pt"
    torch.save(dict(head.state_dict()), head_file)  # keys 0.weight, 0.bias
    out = root / "out"
    report = run_export(
        ExportConfig(checkpoint=checkpoint, head=head_file, output_dir=out, name="full")
    )
    return Exported(report, checkpoint, head_file, out, encoder, head)


def save_small(path: Path, with_head: bool, seed: int = 3) -> Path:
    """A reduced-width clmr-embed checkpoint, optionally with a 3-label multiclass head inside."""
    from training.checkpoint import Checkpoint, save_checkpoint

    encoder = random_encoder(SMALL_CHANNELS, seed)
    ckpt = Checkpoint(encoder_config=encoder.config, encoder_state=encoder.state_dict())
    if with_head:
        head = random_head(seed, in_dim=32, n_labels=3, task="multiclass")
        ckpt.head_config, ckpt.head_state = head.config, head.state_dict()
        ckpt.labels = ["calm", "busy", "odd"]
    save_checkpoint(path, ckpt)
    return path

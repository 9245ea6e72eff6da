"""load_checkpoint dispatches on the file, load_weights fills modules or names the mismatch."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from clmr_embed.errors import CheckpointError
from training.checkpoint import Checkpoint, save_checkpoint
from training.config import EncoderConfig, HeadConfig, ProjectorConfig
from training.samplecnn import Projector, SampleCNN, TaggerHead
from training.weights import load_checkpoint, load_weights

SMALL = EncoderConfig(channels=(8, 8, 8, 16, 16, 16, 16, 16, 16, 32, 32))


def _saved(tmp_path: Path) -> tuple[Path, SampleCNN, Projector]:
    torch.manual_seed(0)
    encoder, projector = SampleCNN(SMALL), Projector(ProjectorConfig(32, 16, 8))
    ckpt = Checkpoint(
        encoder_config=SMALL,
        encoder_state=encoder.state_dict(),
        projector_config=projector.config,
        projector_state=projector.state_dict(),
    )
    save_checkpoint(tmp_path / "run.pt", ckpt)
    return tmp_path / "run.pt", encoder, projector


def test_ours_and_official_layouts_load_through_one_call(tmp_path: Path) -> None:
    path, encoder, _ = _saved(tmp_path)
    assert load_checkpoint(path).source == "clmr-embed"
    torch.save(dict(encoder.state_dict()), tmp_path / "bare.pt")
    assert load_checkpoint(tmp_path / "bare.pt").source == "bare SampleCNN state dict"


def test_load_weights_fills_encoder_and_projector(tmp_path: Path) -> None:
    path, encoder, projector = _saved(tmp_path)
    torch.manual_seed(1)
    fresh_encoder, fresh_projector = SampleCNN(SMALL), Projector(ProjectorConfig(32, 16, 8))
    load_weights(path, fresh_encoder, fresh_projector)
    for want, got in ((encoder, fresh_encoder), (projector, fresh_projector)):
        for key, value in want.state_dict().items():
            assert torch.equal(got.state_dict()[key], value), key


def test_load_weights_names_a_shape_mismatch_and_a_missing_encoder(tmp_path: Path) -> None:
    path, _, _ = _saved(tmp_path)
    wide = SampleCNN(EncoderConfig(channels=(16,) * 9 + (32, 32)))
    with pytest.raises(CheckpointError, match="encoder does not fit this config"):
        load_weights(path, wide, None)
    head = TaggerHead(HeadConfig(32, 2))
    save_checkpoint(
        tmp_path / "head.pt", Checkpoint(head_config=head.config, head_state=head.state_dict())
    )
    with pytest.raises(CheckpointError, match="holds no encoder weights"):
        load_weights(tmp_path / "head.pt", SampleCNN(SMALL), None)

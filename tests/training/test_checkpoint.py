"""Our checkpoint format round trip, and official Lightning files without Lightning installed."""

from __future__ import annotations

import os
import stat
import sys
import types
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from clmr_embed.errors import CheckpointError
from training.checkpoint import Checkpoint, save_checkpoint
from training.config import EncoderConfig
from training.samplecnn import SampleCNN
from training.weights import load_checkpoint

SMALL = EncoderConfig(channels=(8, 8, 8, 16, 16, 16, 16, 16, 16, 32, 32))


def test_round_trip_needs_no_key_surgery(tmp_path: Path) -> None:
    encoder = SampleCNN(SMALL)
    ckpt = Checkpoint(encoder_config=SMALL, encoder_state=encoder.state_dict(), step=7)
    save_checkpoint(tmp_path / "run" / "latest.pt", ckpt)
    loaded = load_checkpoint(tmp_path / "run" / "latest.pt")
    assert loaded.encoder_config == SMALL and loaded.step == 7
    fresh = SampleCNN(loaded.encoder_config)
    assert loaded.encoder_state is not None
    fresh.load_state_dict(loaded.encoder_state, strict=True)
    for key, value in encoder.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value)
    assert not list((tmp_path / "run").glob(".latest.pt.*"))  # no temp file left behind


def test_lightning_checkpoint_loads_without_lightning(tmp_path: Path) -> None:
    fake = types.ModuleType("fake_lightning_utils")
    AttributeDict = type("AttributeDict", (dict,), {"__module__": fake.__name__})
    AttributeDict.__qualname__ = "AttributeDict"
    fake.AttributeDict = AttributeDict  # type: ignore[attr-defined]
    sys.modules[fake.__name__] = fake
    state = {f"model.encoder.{k}": v for k, v in SampleCNN(SMALL).state_dict().items()}
    payload = {"state_dict": state, "hyper_parameters": AttributeDict(lr=3e-4)}
    torch.save(payload, tmp_path / "epoch=9.ckpt")
    del sys.modules[fake.__name__]  # as on a machine without Lightning
    loaded = load_checkpoint(tmp_path / "epoch=9.ckpt")
    assert loaded.encoder_config == SMALL


def test_not_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "notes.pt"
    path.write_text("hello")
    with pytest.raises(CheckpointError, match="notes.pt"):
        load_checkpoint(path)


def test_checkpoint_gets_the_umask_mode_not_a_private_one(tmp_path: Path) -> None:
    previous = os.umask(0o002)  # group-writable: neither mkstemp's 0600 nor the usual 0644
    try:
        save_checkpoint(tmp_path / "latest.pt", Checkpoint(encoder_config=SMALL, step=1))
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "latest.pt").stat().st_mode) == 0o666 & ~0o002

"""run_pretrain: a short run's files, exact resume, the loss falling, init_weights."""

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from clmr_embed.errors import CheckpointError, ConfigError
from tests.fixtures.pretrain import TINY
from training.checkpoint import save_checkpoint, weights_only
from training.layout import cpu_precision
from training.pretrain.config import PretrainConfig, load_pretrain_config
from training.pretrain.run import run_pretrain
from training.samplecnn import SampleCNN
from training.weights import load_checkpoint


def tiny_config(cache_root: Path, **changes) -> PretrainConfig:
    base = dict(encoder_channels=TINY, batch_size=4, max_steps=3, log_every=1, threads=2,
                checkpoint_every=100, cache_dir=str(cache_root), device="cpu")  # fmt: skip
    return load_pretrain_config(None, base | changes)


@pytest.mark.slow  # pre-training runs
def test_short_pretrain_writes_a_restorable_checkpoint_and_run_files(music, tmp_path):
    config = tiny_config(tmp_path / "cache", precision="bf16", max_steps=2)
    result = run_pretrain(config, [music], tmp_path / "run", progress=False)
    assert result.steps == 2 and math.isfinite(result.first_loss)
    ckpt = load_checkpoint(result.checkpoint)
    assert ckpt.step == 2 and ckpt.train_config["batch_size"] == 4
    assert ckpt.encoder_config is not None and ckpt.encoder_state is not None
    assert not any(k.startswith(("module.", "_orig_mod.")) for k in ckpt.encoder_state)
    encoder = SampleCNN(ckpt.encoder_config)
    encoder.load_state_dict(ckpt.encoder_state, strict=True)
    assert ckpt.projector_state is not None
    assert ckpt.projector_state["2.weight"].shape == (128, 512)
    assert result.best_checkpoint.exists() and (tmp_path / "run" / "loss.png").exists()
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["step"] for r in rows] == [1, 2] and rows[0]["loss"] == result.first_loss
    ran, _ = cpu_precision(config.precision, torch.device("cpu"))  # fp32 without native bf16
    assert load_pretrain_config(tmp_path / "run" / "config.toml") == replace(config, precision=ran)
    with pytest.raises(ConfigError, match="already holds latest.pt"):
        run_pretrain(config, [music], tmp_path / "run", progress=False)
    with pytest.raises(CheckpointError, match="does not exist"):
        run_pretrain(config, [music], tmp_path / "other", resume=True, progress=False)


@pytest.mark.slow  # pre-training runs
def test_resumed_run_equals_an_uninterrupted_one(music, tmp_path):
    config = tiny_config(tmp_path / "cache", max_steps=4, warmup_steps=1, checkpoint_every=2)
    straight = run_pretrain(config, [music], tmp_path / "a", progress=False)
    run_pretrain(replace(config, stop_at_step=2), [music], tmp_path / "b", progress=False)
    resumed = run_pretrain(config, [music], tmp_path / "b", resume=True, progress=False)
    a, b = load_checkpoint(straight.checkpoint), load_checkpoint(resumed.checkpoint)
    assert a.step == b.step == 4
    assert a.encoder_state is not None and b.encoder_state is not None
    for key, value in a.encoder_state.items():
        torch.testing.assert_close(b.encoder_state[key], value, rtol=0, atol=1e-6, msg=key)
    assert resumed.first_loss == straight.first_loss
    rows_a, rows_b = (
        [json.loads(line) for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
        for run in ("a", "b")
    )
    assert [r["step"] for r in rows_b] == [r["step"] for r in rows_a] == [1, 2, 3, 4]
    assert [r["loss"] for r in rows_b] == pytest.approx([r["loss"] for r in rows_a], abs=1e-6)
    with pytest.raises(ConfigError, match="seed"):
        run_pretrain(replace(config, seed=1), [music], tmp_path / "b", resume=True, progress=False)


@pytest.mark.slow  # pre-training runs
def test_loss_falls_when_overfitting_four_tracks(music, tmp_path):
    # Cheap augmentations only: pitch shift, reverb and filters make 30 steps too noisy to judge.
    light = {"augment.filter_p": 0.0, "augment.pitch_p": 0.0, "augment.reverb_p": 0.0}
    config = tiny_config(tmp_path / "cache", max_steps=30, lr=3e-3, schedule="constant", **light)
    run_pretrain(config, [music], tmp_path / "run", progress=False)
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    losses = [json.loads(line)["loss"] for line in lines]
    assert len(losses) == 30
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.3, losses


@pytest.mark.slow  # pre-training runs
def test_init_weights_starts_from_a_slim_checkpoint(music, tmp_path):
    config = tiny_config(tmp_path / "cache", max_steps=1)
    first = load_checkpoint(
        run_pretrain(config, [music], tmp_path / "a", progress=False).checkpoint
    )
    slim = weights_only(first, note="test")
    assert slim.optimizer_state is None and slim.extra == {"note": "test"} and slim.step == 1
    save_checkpoint(tmp_path / "slim.pt", slim)
    # lr 0: the continued run keeps the weights it started from, not the seed's fresh init
    again = replace(config, init_weights=str(tmp_path / "slim.pt"), lr=0.0, warmup_steps=0)
    second = load_checkpoint(
        run_pretrain(again, [music], tmp_path / "b", progress=False).checkpoint
    )
    fresh = load_checkpoint(
        run_pretrain(
            replace(again, init_weights=""), [music], tmp_path / "c", progress=False
        ).checkpoint
    )
    key = "sequential.0.0.weight"
    assert first.encoder_state and second.encoder_state and fresh.encoder_state
    torch.testing.assert_close(second.encoder_state[key], first.encoder_state[key])
    assert not torch.equal(fresh.encoder_state[key], first.encoder_state[key])
    wide = replace(again, encoder_channels=(16,) * 9 + (32, 32))
    with pytest.raises(CheckpointError, match="does not fit"):
        run_pretrain(wide, [music], tmp_path / "d", progress=False)

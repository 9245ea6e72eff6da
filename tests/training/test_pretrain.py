"""Pre-training: LR schedule, crop pairs, LARS groups, config loading, checkpoints, exact resume."""

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

torch = pytest.importorskip("torch")

from clmr_embed.constants import SAMPLE_RATE, WINDOW_SAMPLES  # noqa: E402
from clmr_embed.errors import CheckpointError, ConfigError, DataError  # noqa: E402
from training.cache import build_cache  # noqa: E402
from training.checkpoint import load_checkpoint  # noqa: E402
from training.config import EncoderConfig  # noqa: E402
from training.datasets import CropPairs, StepBatchSampler  # noqa: E402
from training.lars import LARS, decay_groups  # noqa: E402
from training.pretrain import PretrainConfig, load_pretrain_config, run_pretrain  # noqa: E402
from training.samplecnn import SampleCNN  # noqa: E402
from training.schedule import lr_at  # noqa: E402

TINY = [8, 8, 8, 16, 16, 16, 16, 16, 16, 32, 32]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def music(tmp_path_factory) -> Path:
    """Four distinct 3.5 s tracks: harmonic tones at different pitches plus a little noise."""
    folder = tmp_path_factory.mktemp("music")
    rng = np.random.default_rng(0)
    t = np.arange(round(3.5 * SAMPLE_RATE)) / SAMPLE_RATE
    for k, freq in enumerate((110.0, 290.0, 740.0, 1900.0)):
        tone = sum(np.sin(2 * np.pi * freq * h * t) / h for h in (1, 2, 3))
        wave = 0.3 * tone + 0.02 * rng.standard_normal(t.size)
        sf.write(folder / f"track{k}.wav", wave.astype(np.float32), SAMPLE_RATE)
    return folder


def tiny_config(cache_root: Path, **changes) -> PretrainConfig:
    base = dict(encoder_channels=TINY, batch_size=4, max_steps=3, log_every=1, threads=2,
                checkpoint_every=100, cache_dir=str(cache_root), device="cpu")  # fmt: skip
    return load_pretrain_config(None, base | changes)


def test_lr_schedule_warms_up_linearly_then_decays_to_the_cosine_floor():
    lrs = [lr_at(s, 1.0, warmup_steps=4, total_steps=14, min_lr_ratio=0.1) for s in range(16)]
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert lrs[4] == pytest.approx(1.0)
    assert lrs[9] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 5 / 9)))
    assert lrs[13] == pytest.approx(0.1) and lrs[15] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(lrs[3:], lrs[4:], strict=False))
    assert lr_at(100, 3e-4, 0, 10, schedule="constant") == 3e-4
    with pytest.raises(ConfigError, match="linear"):
        lr_at(0, 1.0, 0, 10, schedule="linear")


def test_two_views_are_independent_crops_and_batches_are_pure_functions_of_the_step(
    music, tmp_path
):
    rng = np.random.default_rng(1)
    for k, seconds in enumerate((7.0, 7.0, 9.0, 3.0, 6.0)):
        noise = 0.1 * rng.standard_normal(round(seconds * SAMPLE_RATE))
        sf.write(tmp_path / f"{k}.wav", noise.astype(np.float32), SAMPLE_RATE)
    cache, _ = build_cache([tmp_path], SAMPLE_RATE, cache_root=tmp_path / "c", progress=False)
    pairs = CropPairs(cache, segment_samples=SAMPLE_RATE)  # < one window: segments of 59049
    assert pairs.tracks.tolist() == [0, 0, 1, 1, 2, 2, 2, 3, 4, 4]
    assert pairs.starts.tolist()[:3] == [0, WINDOW_SAMPLES, 0]
    assert pairs.lengths.tolist()[:2] == [WINDOW_SAMPLES, 7 * SAMPLE_RATE - WINDOW_SAMPLES]
    assert len(CropPairs(cache)) == 5  # 0: one item per track
    keys = pairs.keys_for_step(5, seed=1, batch_size=4)
    assert keys == pairs.keys_for_step(5, seed=1, batch_size=4)
    assert keys != pairs.keys_for_step(6, seed=1, batch_size=4)
    roomy = max(keys, key=lambda k: pairs.lengths[k.segment])  # a segment longer than a window
    assert roomy.start_i != roomy.start_j
    item = pairs[roomy]
    assert item["x_i"].shape == item["x_j"].shape == (1, WINDOW_SAMPLES)
    assert item["x_i"].dtype == torch.float32 and not torch.equal(item["x_i"], item["x_j"])
    assert int(item["track"]) == pairs.tracks[roomy.segment]
    # two ranks split each global batch: disjoint halves of one epoch's permutation
    epoch = [pairs.keys_for_step(s, 1, 1, rank=r, world=2) for s in range(5) for r in range(2)]
    assert sorted(k.segment for keys in epoch for k in keys) == list(range(10))
    assert all(0 <= k.start_i <= pairs.lengths[k.segment] - WINDOW_SAMPLES for k in keys)
    sampler = StepBatchSampler(pairs, range(4, 6), seed=1, batch_size=4)
    assert list(sampler) == [pairs.keys_for_step(s, 1, 4) for s in (4, 5)]
    with pytest.raises(DataError, match="fewer than one global batch"):
        pairs.steps_per_epoch(11)


def test_lars_groups_exclude_batchnorm_and_biases():
    model = SampleCNN(EncoderConfig(channels=tuple(TINY)))
    decayed, excluded = decay_groups(model, 1e-6)
    assert all(p.ndim == 3 for p in decayed["params"]) and len(decayed["params"]) == 11
    assert excluded["weight_decay"] == 0.0 and excluded["lars_exclude"]
    assert len(excluded["params"]) == 33  # conv bias, BN weight, BN bias per block
    weight = torch.nn.Parameter(torch.ones(4, 4))
    optimizer = LARS([weight], lr=1.0, trust_coefficient=0.01)
    weight.grad = torch.full((4, 4), 100.0)
    optimizer.step()  # trust ratio 0.01 * ||w|| / ||g|| = 1e-4 -> step 0.01 per entry
    assert torch.allclose(weight, torch.full((4, 4), 0.99))


def test_config_rejects_unknown_keys_and_reads_nested_augment(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text('batch_size = 16\noptimizer = "lars"\n[augment]\npitch_p = 0.0\n')
    config = load_pretrain_config(toml, {"augment.reverb_p": 0.1, "max_steps": 7})
    assert (config.batch_size, config.optimizer, config.max_steps) == (16, "lars", 7)
    assert (config.augment.pitch_p, config.augment.reverb_p) == (0.0, 0.1)
    with pytest.raises(ConfigError, match="batch_sise"):
        load_pretrain_config(None, {"batch_sise": 4})
    with pytest.raises(ConfigError, match="precision"):
        load_pretrain_config(None, {"precision": "int8"})
    shipped = [load_pretrain_config(p) for p in sorted((REPO / "configs").glob("pretrain-*.toml"))]
    assert len(shipped) >= 2 and len(set(shipped)) == len(shipped)  # all differ


def test_short_pretrain_writes_a_restorable_checkpoint_and_run_files(music, tmp_path):
    config = tiny_config(tmp_path / "cache", precision="bf16", max_steps=2)
    result = run_pretrain(config, [music], tmp_path / "run", progress=False)
    assert result.steps == 2 and math.isfinite(result.first_loss)
    ckpt = load_checkpoint(result.checkpoint)
    assert ckpt.step == 2 and ckpt.train_config["batch_size"] == 4
    assert not any(k.startswith(("module.", "_orig_mod.")) for k in ckpt.encoder_state)
    encoder = SampleCNN(ckpt.encoder_config)
    encoder.load_state_dict(ckpt.encoder_state, strict=True)
    assert ckpt.projector_state["2.weight"].shape == (128, 512)
    assert result.best_checkpoint.exists() and (tmp_path / "run" / "loss.png").exists()
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["step"] for r in rows] == [1, 2] and rows[0]["loss"] == result.first_loss
    assert load_pretrain_config(tmp_path / "run" / "config.toml") == config
    with pytest.raises(ConfigError, match="already holds latest.pt"):
        run_pretrain(config, [music], tmp_path / "run", progress=False)
    with pytest.raises(CheckpointError, match="does not exist"):
        run_pretrain(config, [music], tmp_path / "other", resume=True, progress=False)


def test_resumed_run_equals_an_uninterrupted_one(music, tmp_path):
    config = tiny_config(tmp_path / "cache", max_steps=4, warmup_steps=1, checkpoint_every=2)
    straight = run_pretrain(config, [music], tmp_path / "a", progress=False)
    run_pretrain(replace(config, stop_at_step=2), [music], tmp_path / "b", progress=False)
    resumed = run_pretrain(config, [music], tmp_path / "b", resume=True, progress=False)
    a, b = load_checkpoint(straight.checkpoint), load_checkpoint(resumed.checkpoint)
    assert a.step == b.step == 4
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


def test_loss_falls_when_overfitting_four_tracks(music, tmp_path):
    # Cheap augmentations only: pitch shift, reverb and filters make 30 steps too noisy to judge.
    light = {"augment.filter_p": 0.0, "augment.pitch_p": 0.0, "augment.reverb_p": 0.0}
    config = tiny_config(tmp_path / "cache", max_steps=30, lr=3e-3, schedule="constant", **light)
    run_pretrain(config, [music], tmp_path / "run", progress=False)
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    losses = [json.loads(line)["loss"] for line in lines]
    assert len(losses) == 30
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.3, losses


def test_init_weights_starts_from_a_slim_checkpoint(music, tmp_path):
    from training.checkpoint import save_checkpoint, weights_only

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
    torch.testing.assert_close(second.encoder_state[key], first.encoder_state[key])
    assert not torch.equal(fresh.encoder_state[key], first.encoder_state[key])
    wide = replace(again, encoder_channels=[16] * 9 + [32, 32])
    with pytest.raises(CheckpointError, match="does not fit"):
        run_pretrain(wide, [music], tmp_path / "d", progress=False)

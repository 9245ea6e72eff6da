"""Distillation alone: single grid crops, jittered and split, and the clean recipe's tiny run."""

import json
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from clmr_embed.constants import SAMPLE_RATE, WINDOW_SAMPLES
from clmr_embed.errors import ConfigError
from tests.fixtures.pretrain import RECIPE, ROOT, tiny_run
from training.pretrain.cache import pcm_to_float
from training.pretrain.config import load_pretrain_config
from training.pretrain.crops import GridCrops, validation_tracks
from training.pretrain.run import run_pretrain
from training.weights import load_checkpoint

WEIGHTS = ROOT.parent / "shared" / "weights"
needs_teacher = pytest.mark.skipif(
    not (WEIGHTS / "musicnn_mtt.onnx").is_file(), reason="needs ../shared/weights"
)


def test_validation_tracks_are_seeded_per_track_and_never_empty():
    held = validation_tracks(1000, 0.03, seed=42)
    assert 10 <= held.sum() <= 60
    assert (held == validation_tracks(1000, 0.03, seed=42)).all()
    assert (held[:500] == validation_tracks(500, 0.03, seed=42)).all()  # growing keeps the split
    assert validation_tracks(3, 0.01, seed=0).sum() == 1
    assert not validation_tracks(10, 0.0, seed=0).any()


def test_single_crop_settings_need_distillation_alone():
    with pytest.raises(ConfigError, match="contrastive_weight = 0"):
        load_pretrain_config(None, {"crop_jitter_seconds": 0.1})
    with pytest.raises(ConfigError, match="validation_fraction"):
        load_pretrain_config(
            None, {"teacher": "x", "contrastive_weight": 0, "validation_fraction": 1}
        )
    with pytest.raises(ConfigError, match="half of teacher_hop_seconds"):
        load_pretrain_config(
            None, {"teacher": "x", "contrastive_weight": 0, "crop_jitter_seconds": 0.6}
        )
    recipe = load_pretrain_config(RECIPE)
    assert recipe.objective == "distill" and recipe.windows_per_example == 1
    assert recipe.optimizer == "adamw" and recipe.weight_decay == 0.01
    assert recipe.augment.filter_p == recipe.augment.pitch_p == recipe.augment.reverb_p == 0


@needs_teacher
def test_an_epoch_visits_each_training_crop_once_with_its_grid_target(demo_corpus):
    _, _, cache, targets = demo_corpus
    held = np.zeros(len(cache), dtype=bool)
    held[0] = True
    crops = GridCrops(cache, targets, jitter=2205, held=held)
    counts = targets.spec.counts(cache.lengths)
    assert len(crops) == counts[1:].sum() and len(crops.validation) == counts[0]
    per_epoch = crops.steps_per_epoch(4)
    keys = [k for step in range(per_epoch) for k in crops.keys_for_step(step, 7, 4)]
    rows = [k.row for k in keys]
    assert len(set(rows)) == len(rows) == per_epoch * 4 and max(rows) < len(crops)  # none twice
    assert all(abs(k.shift) <= 2205 for k in keys) and any(k.shift != 0 for k in keys)
    assert keys == [k for step in range(per_epoch) for k in crops.keys_for_step(step, 7, 4)]
    halves = [k for r in range(2) for k in crops.keys_for_step(3, 7, 2, rank=r, world=2)]
    assert halves == crops.keys_for_step(3, 7, 4)  # the world size changes no crop or shift
    key = next(k for k in keys if k.shift > 0 and crops.train[k.row] > targets.offsets[1] + 1)
    item = crops[key]
    row = int(crops.train[key.row])
    track = int(np.searchsorted(targets.offsets, row, side="right") - 1)
    grid = row - int(targets.offsets[track])
    start = grid * SAMPLE_RATE + key.shift  # audio shifted, target of the grid point
    expected = pcm_to_float(cache.track(track)[start : start + WINDOW_SAMPLES])
    assert np.array_equal(item["x"][0].numpy(), expected)
    grid_target, _ = targets.lookup(np.array([track]), np.array([grid * SAMPLE_RATE]))
    assert np.array_equal(item["t"].numpy(), grid_target[0]) and bool(item["m"])
    assert crops.validation_batch(3)["x"].shape == (3, 1, WINDOW_SAMPLES)


@pytest.mark.slow
@needs_teacher
def test_a_tiny_run_of_the_clean_recipe_lowers_the_validation_mse(demo_corpus, tmp_path):
    folder, root, _, _ = demo_corpus
    config = load_pretrain_config(
        RECIPE,
        tiny_run(
            batch_size=8,
            max_steps=150,
            warmup_steps=5,
            lr=3e-3,
            log_every=10,
            validate_every=50,
            checkpoint_every=100,
            cache_dir=str(root),
            teacher=str(WEIGHTS),
            teacher_workers=1,
            validation_fraction=0.2,
        ),  # fmt: skip
    )
    run_pretrain(config, [folder], tmp_path / "run", progress=False)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    validation = [r for r in rows if "val_mse" in r]
    assert [r["step"] for r in validation] == [0, 50, 100, 150]
    assert validation[-1]["val_mse"] < 0.85 * validation[0]["val_mse"]  # measured 0.46 -> 0.34
    training = [r for r in rows if "loss" in r]
    assert all(r["nt_xent"] == 0 for r in training)
    assert training[-1]["clips_per_s"] > 0


def _weights(state: dict[str, Any] | None) -> dict[str, Any]:
    """The learned tensors of a state dict (BatchNorm's running statistics left out)."""
    assert state is not None
    return {k: v for k, v in state.items() if "running_" not in k and "num_batches" not in k}


@pytest.mark.slow
@needs_teacher
def test_the_head_warm_up_keeps_the_loaded_encoder_while_the_fresh_head_learns(
    demo_corpus, tmp_path
):
    folder, root, _, _ = demo_corpus
    tiny = tiny_run(
        batch_size=8, max_steps=5, warmup_steps=0, lr=3e-3, log_every=1, cache_dir=str(root),
        teacher=str(WEIGHTS), teacher_workers=1,
    )  # fmt: skip
    start = tmp_path / "start"  # an encoder to start from, as a candidate checkpoint would be
    first = load_pretrain_config(RECIPE, {**tiny, "stop_at_step": 1})
    run_pretrain(first, [folder], start, progress=False)
    loaded = _weights(load_checkpoint(start / "latest.pt").encoder_state)
    settings = {**tiny, "init_weights": str(start / "latest.pt"), "head_warmup_steps": 3}
    config = load_pretrain_config(RECIPE, {**settings, "stop_at_step": 3})
    run_pretrain(config, [folder], tmp_path / "run", progress=False)

    warm = load_checkpoint(tmp_path / "run" / "latest.pt")
    assert warm.step == 3
    encoder = _weights(warm.encoder_state)
    assert all(torch.equal(encoder[k], loaded[k]) for k in loaded)  # not one weight moved
    head = (warm.extra or {})["distill_head"]
    assert warm.optimizer_state is not None
    moments = warm.optimizer_state["state"]
    assert len(moments) == len(head)  # only the head's parameters were ever stepped

    config = load_pretrain_config(RECIPE, settings)
    run_pretrain(config, [folder], tmp_path / "run", resume=True, progress=False)
    tuned = load_checkpoint(tmp_path / "run" / "latest.pt")
    assert tuned.step == 5
    assert any(not torch.equal(_weights(tuned.encoder_state)[k], loaded[k]) for k in loaded)
    assert tuned.optimizer_state is not None
    assert len(tuned.optimizer_state["state"]) == len(head) + len(loaded)  # then all of them

"""Distillation beside SimCLR: crops on the target grid, both terms logged, the loss falls."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

torch = pytest.importorskip("torch")

from clmr_embed.constants import SAMPLE_RATE
from clmr_embed.errors import ConfigError
from tests.fixtures.pretrain import TINY
from training.pretrain.cache import build_cache
from training.pretrain.config import load_pretrain_config
from training.pretrain.data import CropPairs
from training.pretrain.distill import DistillHead, masked_loss
from training.pretrain.run import run_pretrain
from training.pretrain.targets import GridSpec, TeacherTargets, target_folder
from training.weights import load_checkpoint

WEIGHTS = Path(__file__).resolve().parents[3].parent / "shared" / "weights"
needs_teacher = pytest.mark.skipif(
    not (WEIGHTS / "musicnn_mtt.onnx").is_file(), reason="needs ../shared/weights"
)


@pytest.fixture(scope="module")
def music(tmp_path_factory) -> Path:
    """Four distinct 8 s tracks: harmonic tones with a rhythm, plus a little noise."""
    folder = tmp_path_factory.mktemp("music")
    rng = np.random.default_rng(0)
    t = np.arange(8 * SAMPLE_RATE) / SAMPLE_RATE
    for k, freq in enumerate((110.0, 290.0, 740.0, 1900.0)):
        tone = sum(np.sin(2 * np.pi * freq * h * t) / h for h in (1, 2, 3))
        beat = 0.5 + 0.5 * np.sign(np.sin(2 * np.pi * (1 + k) * t))
        wave = 0.3 * tone * beat + 0.02 * rng.standard_normal(t.size)
        sf.write(folder / f"track{k}.wav", wave.astype(np.float32), SAMPLE_RATE)
    return folder


def test_masked_loss_ignores_rows_without_targets():
    predicted = torch.tensor([[1.0, 1.0], [5.0, 5.0]], requires_grad=True)
    target = torch.zeros(2, 2)
    loss = masked_loss(predicted, target, torch.tensor([True, False]))
    assert loss.item() == 1.0
    assert masked_loss(predicted, target, torch.tensor([False, False])).item() == 0.0
    with pytest.raises(ConfigError):
        DistillHead(4, 3, "deep")


def test_teacher_settings_are_checked():
    with pytest.raises(ConfigError, match="teacher_output"):
        load_pretrain_config(None, {"teacher": "x", "teacher_output": "logits"})
    with pytest.raises(ConfigError, match="must divide segment_seconds"):
        load_pretrain_config(None, {"teacher": "x", "teacher_hop_seconds": 7.0})


@pytest.mark.slow
@needs_teacher
def test_distilled_run_snaps_crops_logs_both_terms_and_the_teacher_term_falls(music, tmp_path):
    config = load_pretrain_config(
        None,
        dict(
            encoder_channels=TINY,
            batch_size=4,
            max_steps=40,
            log_every=10,
            threads=2,
            checkpoint_every=100,
            cache_dir=str(tmp_path / "cache"),
            device="cpu",
            lr=3e-3,
            segment_seconds=4.0,
            teacher=str(WEIGHTS),
            teacher_hop_seconds=1.0,
            teacher_workers=1,
            teacher_weight=1.0,
        ),  # fmt: skip
    )
    result = run_pretrain(config, [music], tmp_path / "run", progress=False)
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    assert all("nt_xent" in r and "teacher" in r for r in rows)
    for r in rows:
        assert r["loss"] == pytest.approx(r["nt_xent"] + r["teacher"], rel=1e-5)
    assert rows[-1]["teacher"] < 0.85 * rows[0]["teacher"]  # measured 0.65 -> 0.46
    ckpt = load_checkpoint(result.checkpoint)
    assert set(ckpt.extra["distill_head"]) == {"0.weight", "0.bias"}  # kept to resume only
    assert ckpt.encoder_state is not None
    assert not any("distill" in k for k in ckpt.encoder_state)
    # the sampler drew only grid starts: every crop of step 7 has a target
    cache, _ = build_cache([music], SAMPLE_RATE, cache_root=tmp_path / "cache", progress=False)
    spec = GridSpec("max_pool", SAMPLE_RATE, 59049)
    assert target_folder(cache, spec).is_dir()
    pairs = CropPairs(cache, segment_samples=4 * SAMPLE_RATE, targets=TeacherTargets(cache, spec))
    for key in pairs.keys_for_step(7, config.seed, 4):
        assert key.start_i % SAMPLE_RATE == 0 and key.start_j % SAMPLE_RATE == 0
        item = pairs[key]
        assert item["m_i"] and item["m_j"] and item["t_i"].shape == (753,)

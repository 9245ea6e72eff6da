"""`--scale small`: the real encoder, every shipped spec within its CPU budget, cells ordered."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")

from training.experiment.grid import kind_rules
from training.experiment.spec import Spec, SpecInputs, load_spec
from training.pretrain.config import PretrainConfig

SPECS = Path(__file__).resolve().parents[3] / "configs" / "experiments"
# Windows a 2-core AMX Xeon pre-trains in 30 minutes at 23 SimCLR windows/s (measured at batch 8,
# docs/experiments/README.md), less a fifth for probes, supervised folds and start-up
BUDGET_WINDOWS = 0.8 * 30 * 60 * 23
CPC_COST = 4.6  # a CPC window's time in SimCLR windows (measured there: 5.4 vs 25 windows/s)


def spec_data(tmp_path: Path) -> dict[str, tuple[Path, ...]]:
    music = tmp_path / "music"
    music.mkdir(exist_ok=True)
    (music / "a.wav").write_bytes(b"")  # resolved, never decoded: load_spec only lists inputs
    return {"free-music": (music,), "clmr-demo": (music,)}


def small(name: str, tmp_path: Path) -> Spec:
    return load_spec(SPECS / f"{name}.toml", SpecInputs(kind_rules(), spec_data(tmp_path), "small"))


def windows(config: PretrainConfig) -> float:
    per_step = config.batch_size * (1 if config.method == "cpc" else 2)
    return config.max_steps * per_step * (CPC_COST if config.method == "cpc" else 1.0)


@pytest.mark.parametrize("name", [p.stem for p in sorted(SPECS.glob("*.toml"))])
def test_every_shipped_spec_fits_the_small_budget_at_full_width(name: str, tmp_path: Path) -> None:
    spec = small(name, tmp_path)
    full = load_spec(SPECS / f"{name}.toml", SpecInputs(kind_rules(), spec_data(tmp_path), "full"))
    pretrainings = {c.pretrain_key(): c.pretrain for c in spec.cells if c.kind == "pretrain"}
    assert sum(windows(p) for p in pretrainings.values() if p) <= BUDGET_WINDOWS
    for cell, original in zip(spec.cells, full.cells, strict=True):
        if cell.pretrain and original.pretrain:  # the architecture is the spec's, not a toy's
            assert cell.pretrain.encoder_channels == original.pretrain.encoder_channels
            assert cell.pretrain.max_steps < (original.pretrain.max_steps or 10**9)


def test_small_keeps_batch_sizes_and_durations_ordered(tmp_path: Path) -> None:
    batches = [c.pretrain.batch_size for c in small("batch-size", tmp_path).cells if c.pretrain]
    steps = [c.pretrain.max_steps for c in small("duration", tmp_path).cells if c.pretrain]
    assert batches == sorted(batches, reverse=True) and len(set(batches)) == len(batches)
    assert steps == sorted(steps, reverse=True) and len(set(steps)) == len(steps)

"""The campaign keeps the best checkpoint by the gate, stops after `patience` probes without."""

import argparse
import json
from pathlib import Path

import pytest

pytest.importorskip("torch")

from tools.campaign import BEST, PROBED, PROBES, _plateau, chunk_config, record
from training.pretrain.config import load_pretrain_config
from training.pretrain.state import LATEST


def _probe(run, step, gtzan, mrr):
    (run / LATEST).write_text(f"weights of step {step}")
    row = {"step": step, "gtzan_accuracy": gtzan, "holdout_mrr": mrr, "holdout_mrr_plain": mrr}
    return record(run, row)


def test_best_moves_only_when_no_probe_is_worse(tmp_path):
    assert _probe(tmp_path, 10, 0.60, 0.50)  # the first probe is the best so far
    assert _probe(tmp_path, 20, 0.65, 0.55)
    assert not _probe(tmp_path, 30, 0.70, 0.54)  # better GTZAN, worse MRR: refused
    assert (tmp_path / BEST).read_text() == "weights of step 20"
    rows = [json.loads(line) for line in (tmp_path / PROBES).read_text().splitlines()]
    assert [r["best"] for r in rows] == [True, True, False]
    assert not _plateau(rows, patience=2)
    assert not _probe(tmp_path, 40, 0.64, 0.56)
    rows = [json.loads(line) for line in (tmp_path / PROBES).read_text().splitlines()]
    assert _plateau(rows, patience=2) and not _plateau(rows, patience=3)


def test_the_run_config_carries_the_flags_once(tmp_path):
    recipe = Path(__file__).resolve().parents[2] / "configs" / "distill-clean.toml"
    flags = dict(init=Path("r1.pt"), lr=1e-4, cache_dir=None, head_warmup_steps=500)
    args = argparse.Namespace(run=tmp_path / "run", config=recipe, anchor_weight=2.0, **flags)
    config = load_pretrain_config(chunk_config(args))
    assert (config.anchor_weight, config.init_weights, config.lr) == (2.0, "r1.pt", 1e-4)
    assert config.head_warmup_steps == 500
    args.anchor_weight = 0.0  # written once: a rerun with other flags keeps the run's config
    assert load_pretrain_config(chunk_config(args)).anchor_weight == 2.0


def test_keep_probed_saves_each_probed_checkpoint_beside_the_best(tmp_path):
    (tmp_path / LATEST).write_text("weights of step 10")
    record(tmp_path, {"step": 10, "gtzan_accuracy": 0.6, "holdout_mrr": 0.5}, keep=True)
    (tmp_path / LATEST).write_text("weights of step 20")
    record(tmp_path, {"step": 20, "gtzan_accuracy": 0.5, "holdout_mrr": 0.5}, keep=True)
    kept = sorted(p.name for p in (tmp_path / PROBED).iterdir())
    assert kept == ["step-10.pt", "step-20.pt"]
    assert (tmp_path / PROBED / "step-20.pt").read_text() == "weights of step 20"
    assert (tmp_path / BEST).read_text() == "weights of step 10"  # the gate refused step 20

"""Tests of tools.default_model: the card's description and the checks made before any work."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools import default_model
from tools.default_model import describe, main
from training.checkpoint import Checkpoint

DISTILL = {"contrastive_weight": 0.0, "batch_size": 32}


def test_describe_says_a_continued_run_started_from_its_init_and_its_anchor() -> None:
    config = {**DISTILL, "init_weights": "w/clmr-distill-gpu-r1.pt", "anchor_weight": 1.0}
    text = describe(Checkpoint(step=3200, train_config=config))
    assert "continued from clmr-distill-gpu-r1" in text
    assert "3200 steps, 102,400 windows" in text
    assert "anchor weight 1.0" in text
    assert "random init" not in text


def test_describe_of_a_run_from_scratch_says_random_init() -> None:
    text = describe(Checkpoint(step=10, train_config=DISTILL))
    assert "trained from random init" in text
    assert "anchor" not in text


def test_missing_labels_are_a_usage_error_before_the_gate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def gate(*_: object) -> None:
        raise AssertionError("the gate ran before the labels were checked")

    monkeypatch.setattr(default_model, "gate", gate)
    argv = ["--checkpoint", "c.pt", "--labels", str(tmp_path / "none.csv"), "--corpus", "d"]
    with pytest.raises(SystemExit) as stop:
        main([*argv, "--install"])
    assert stop.value.code == 2

"""Linear-evaluation settings: split checks, the probe's split part, a run's label fractions."""

from pathlib import Path
from typing import Any

import pytest

from clmr_embed.errors import ConfigError
from training.linear.config import LinearEvalConfig, LinearRunConfig, SplitConfig


def test_probe_config_gives_its_split_part() -> None:
    probe = LinearEvalConfig(split="kfold", folds=3, repeats=2, seed=7, label_fraction=0.5)
    assert probe.split_config() == SplitConfig("kfold", 3, 2, 7, 0.5, 0.1)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"mode": "random"}, "split mode 'random'"),
        ({"label_fraction": 0.0}, "label_fraction must be in"),
        ({"valid_fraction": 1.0}, "valid_fraction must be in"),
        ({"folds": 1}, "folds >= 2"),
    ],
)
def test_bad_split_settings_are_refused(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SplitConfig(**changes)


def test_run_refuses_label_fractions_outside_zero_one() -> None:
    paths: dict[str, Any] = {"encoder": "mfcc", "labels": Path("l.csv"), "output_dir": Path("run")}
    assert LinearRunConfig(**paths, fractions=(1.0, 0.2)).fractions == (1.0, 0.2)
    for fractions in ((), (0.0,), (1.5, 0.5)):
        with pytest.raises(ConfigError, match=r"label fractions must lie in \(0, 1\]"):
            LinearRunConfig(**paths, fractions=fractions)

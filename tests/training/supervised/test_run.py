"""`run_supervised`: a tiny SampleCNN learns separable clips, and a resumed run continues."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from clmr_embed.errors import CheckpointError, ConfigError
from export.linear import LinearExport
from tests.training.supervised.clips import write_clips
from training.config import EncoderConfig
from training.supervised.config import SupervisedConfig, SupervisedRunConfig
from training.supervised.fit import LATEST
from training.supervised.run import ROUNDS, run_supervised
from training.weights import load_checkpoint

SMALL = EncoderConfig(channels=(8, 8, 8, 8, 8, 8, 8, 8, 8, 16, 16))


@pytest.fixture()
def manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CLMR_EMBED_CACHE", str(tmp_path / "cache"))
    (tmp_path / "clips").mkdir()
    return write_clips(tmp_path / "clips")


def _config(manifest: Path, run: Path, steps: int, resume: bool = False) -> SupervisedRunConfig:
    train = SupervisedConfig(
        encoder=SMALL, max_steps=steps, batch_size=8, lr=3e-3, eval_every=5, checkpoint_every=5
    )
    return SupervisedRunConfig(labels=manifest, output_dir=run, train=train, resume=resume)


def test_the_trainer_beats_chance_and_writes_linears_report(manifest: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = run_supervised(_config(manifest, run, steps=30), LinearExport())
    summary = result.to_dict()
    assert summary["task"] == "multiclass" and summary["items"] == 16
    assert summary["results"][0]["accuracy"]["mean"] > 0.75  # chance: 0.5 on 2 + 2 test clips
    report = json.loads((run / "report.json").read_text())
    assert set(report) == {"title", "notes", "runs"}
    assert report["runs"][0]["protocol"].startswith("SampleCNN and a linear head")
    assert report["runs"][0]["folds"][0]["sizes"] == {"train": 10, "valid": 2, "test": 4}
    assert (run / "run-tagger.onnx").is_file() and (run / "summary.json").is_file()


def test_a_resumed_run_continues_where_the_checkpoint_stopped(
    manifest: Path, tmp_path: Path
) -> None:
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    run_supervised(_config(manifest, whole, steps=6), LinearExport())
    run_supervised(_config(manifest, parts, steps=3), LinearExport())
    latest = parts / ROUNDS / "fraction-1" / "given" / LATEST
    assert load_checkpoint(latest).step == 3
    run_supervised(_config(manifest, parts, steps=6, resume=True), LinearExport())
    straight = load_checkpoint(whole / latest.relative_to(parts))
    resumed = load_checkpoint(latest)
    assert resumed.step == straight.step == 6
    assert resumed.encoder_state is not None and straight.encoder_state is not None
    for key, value in straight.encoder_state.items():
        assert torch.allclose(resumed.encoder_state[key], value, atol=1e-6), key


def test_a_run_folder_is_not_overwritten_nor_resumed_from_nothing(
    manifest: Path, tmp_path: Path
) -> None:
    with pytest.raises(CheckpointError, match="cannot resume"):
        run_supervised(_config(manifest, tmp_path / "none", 2, resume=True), LinearExport())
    run = tmp_path / "run"
    (run / ROUNDS).mkdir(parents=True)
    with pytest.raises(ConfigError, match="already holds a run"):
        run_supervised(_config(manifest, run, 2), LinearExport())


def test_resuming_with_other_settings_is_refused(manifest: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run_supervised(_config(manifest, run, steps=2), LinearExport())
    changed = SupervisedRunConfig(
        labels=manifest,
        output_dir=run,
        train=SupervisedConfig(encoder=SMALL, max_steps=4, batch_size=4, eval_every=5),
        resume=True,
    )
    with pytest.raises(ConfigError, match="batch_size"):
        run_supervised(changed, LinearExport())

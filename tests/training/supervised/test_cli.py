"""`clmr-embed train supervised`: usage errors before any work, and its tagger runs in `tag`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("torch")
pytest.importorskip("onnx")

from clmr_embed.cli import app
from tests.training.supervised.clips import write_clips

runner = CliRunner()


@pytest.mark.parametrize(
    "option",
    [
        ["--split", "random"],
        ["--label-fraction", "0"],
        ["--label-fraction", "1.5"],
        ["--folds", "1"],
        ["--max-steps", "0"],
        ["--batch-size", "0"],
        ["--lr", "0"],
        ["--device", "tpu"],
        ["--seed", "-1"],
    ],
)
def test_bad_options_are_usage_errors_before_any_work(tmp_path: Path, option: list[str]) -> None:
    run = tmp_path / "run"
    args = ["train", "supervised", "--labels", str(tmp_path), "--output-dir", str(run)]
    result = runner.invoke(app, [*args, *option])
    assert result.exit_code == 2, result.output
    assert option[0] in result.output and not run.exists()


def test_its_tagger_runs_in_tag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLMR_EMBED_CACHE", str(tmp_path / "cache"))
    (tmp_path / "clips").mkdir()
    manifest = write_clips(tmp_path / "clips")
    run = tmp_path / "sup"
    args = ["train", "supervised", "--labels", str(manifest), "--output-dir", str(run)]
    steps = ["--max-steps", "1", "--batch-size", "2", "--device", "cpu", "--json"]
    result = runner.invoke(app, [*args, *steps])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert set(summary) == {"encoder", "items", "task", "results", "files"}  # train linear's
    assert summary["encoder"] == "supervised" and summary["results"][0]["label_fraction"] == 1.0
    song = tmp_path / "clips" / "hum0.wav"
    tagged = runner.invoke(
        app, ["tag", str(song), "--model", str(run / "sup-tagger.onnx"), "--json"]
    )
    assert tagged.exit_code == 0, tagged.output
    assert sorted(t["label"] for t in json.loads(tagged.stdout)["tags"]) == ["hiss", "hum"]

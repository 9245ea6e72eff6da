"""`clmr-embed train linear` end to end on generated audio with separable classes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from clmr_embed.cli import app
from tests.fixtures.audio import write_audio
from training.checkpoint import Checkpoint, save_checkpoint
from training.config import EncoderConfig
from training.samplecnn import SampleCNN

runner = CliRunner()
SMALL = EncoderConfig(channels=(8, 8, 8, 16, 16, 16, 16, 16, 16, 32, 32))


@pytest.fixture(scope="module")
def class_folders(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """GTZAN-style folders: 'hum' (low tones) vs 'hiss' (high-passed noise), 9 clips each."""
    root = tmp_path_factory.mktemp("classes")
    rng = np.random.default_rng(0)
    t = np.arange(int(3.0 * 22050)) / 22050
    for i in range(9):
        (root / "hum").mkdir(exist_ok=True)
        (root / "hiss").mkdir(exist_ok=True)
        hum = 0.4 * np.sin(2 * np.pi * rng.uniform(60, 200) * t) + 0.01 * rng.standard_normal(
            len(t)
        )
        hiss = np.diff(rng.standard_normal(len(t) + 1)) * 0.2
        write_audio(root / "hum" / f"hum{i:02d}.wav", hum.astype(np.float32), 22050)
        write_audio(root / "hiss" / f"hiss{i:02d}.wav", hiss.astype(np.float32), 22050)
    return root


@pytest.mark.slow  # a whole linear-evaluation run
def test_mfcc_baseline_separates_classes(class_folders: Path, tmp_path: Path) -> None:
    args = ["train", "linear", "--encoder", "mfcc", "--labels", str(class_folders)]
    result = runner.invoke(app, [*args, "--output-dir", str(tmp_path / "run"), "--folds", "3"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert set(summary) == {"encoder", "items", "task", "results", "files"}  # no store for MFCC
    assert summary["task"] == "multiclass"
    assert summary["results"][0]["accuracy"]["mean"] >= 0.9
    assert (tmp_path / "run" / "report.md").is_file() and (tmp_path / "run" / "head.pt").is_file()


@pytest.mark.slow  # a whole linear-evaluation run
def test_checkpoint_encoder_gives_a_tagger(
    class_folders: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLMR_EMBED_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    ckpt = Checkpoint(encoder_config=SMALL, encoder_state=SampleCNN(SMALL).state_dict(), step=1)
    save_checkpoint(tmp_path / "enc.pt", ckpt)
    run = tmp_path / "probe"
    args = [
        "train",
        "linear",
        "--encoder",
        str(tmp_path / "enc.pt"),
        "--labels",
        str(class_folders),
    ]
    result = runner.invoke(app, [*args, "--output-dir", str(run), "--folds", "3", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert set(summary) == {"encoder", "items", "task", "results", "files", "features"}
    assert set(summary["features"]) == {"store", "embedded", "unchanged", "failed"}
    assert summary["results"][0]["label_fraction"] == 1.0
    assert summary["features"]["embedded"] == 18
    tagger = run / "probe-tagger.onnx"
    song = class_folders / "hiss" / "hiss00.wav"
    tagged = runner.invoke(app, ["tag", str(song), "--model", str(tagger), "--json"])
    assert tagged.exit_code == 0, tagged.output
    labels = [t["label"] for t in json.loads(tagged.stdout)["tags"]]
    assert sorted(labels) == ["hiss", "hum"]
    # a second run recomputes no features: the cached store already holds every clip
    again = runner.invoke(app, [*args, "--output-dir", str(run), "--folds", "3", "--json"])
    assert again.exit_code == 0, again.output
    features = json.loads(again.stdout)["features"]
    assert features["embedded"] == 0 and features["unchanged"] == 18


@pytest.mark.slow  # a whole linear-evaluation run
def test_a_model_name_whose_file_is_a_tagger_is_an_encoder(
    class_folders: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLMR_EMBED_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "named"
    args = ["train", "linear", "--encoder", "clmr-free", "--labels", str(class_folders)]
    result = runner.invoke(app, [*args, "--output-dir", str(run), "--folds", "3", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["results"][0]["accuracy"]["mean"] >= 0.9
    song = class_folders / "hum" / "hum00.wav"
    tagged = runner.invoke(app, ["tag", str(song), "--model", str(run / "named-tagger.onnx")])
    assert tagged.exit_code == 0, tagged.output
    assert "hum" in tagged.stdout


@pytest.mark.parametrize(
    "option",
    [
        ["--split", "random"],
        ["--label-fraction", "0"],
        ["--label-fraction", "1.5"],
        ["--folds", "1"],
        ["--repeats", "0"],
        ["--seed", "-1"],
    ],
)
def test_bad_options_are_usage_errors_before_any_work(tmp_path: Path, option: list[str]) -> None:
    run = tmp_path / "run"
    args = ["train", "linear", "--encoder", "mfcc", "--labels", str(tmp_path)]
    result = runner.invoke(app, [*args, "--output-dir", str(run), *option])
    assert result.exit_code == 2, result.output
    assert option[0] in result.output and not run.exists()


@pytest.mark.slow  # a whole linear-evaluation run
def test_a_run_without_a_tagger_writes_scores_and_head_only(
    class_folders: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from export.linear import LinearExport
    from training.linear.config import LinearEvalConfig, LinearRunConfig
    from training.linear.run import run_linear

    monkeypatch.setenv("CLMR_EMBED_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "gate"
    probe = LinearEvalConfig(split="kfold", folds=3)
    config = LinearRunConfig(
        encoder="clmr-free", labels=class_folders, output_dir=run, probe=probe, tagger=False
    )
    result = run_linear(config, LinearExport())
    assert result.to_dict()["results"][0]["accuracy"]["mean"] >= 0.9
    assert (run / "head.pt").is_file() and not list(run.glob("*-tagger.onnx"))

"""`clmr-embed export` through the CLI: files on stdout, parity figures, one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from clmr_embed.cli import app
from clmr_embed.model import OnnxModel
from tests.fixtures.audio import write_audio
from training.checkpoint import Checkpoint, save_checkpoint
from training.config import EncoderConfig, HeadConfig
from training.linear.baselines import audio_windows, random_encoder_checkpoint
from training.samplecnn import SampleCNN, TaggerHead

SMALL = EncoderConfig(channels=(8, 8, 8, 16, 16, 16, 16, 16, 16, 32, 32))
runner = CliRunner()


@pytest.mark.slow  # ONNX exports
def test_export_writes_files_and_parity(tmp_path: Path) -> None:
    head_cfg = HeadConfig(in_dim=32, n_labels=2, task="multiclass")
    ckpt = Checkpoint(
        encoder_config=SMALL,
        encoder_state=SampleCNN(SMALL).state_dict(),
        head_config=head_cfg,
        head_state=TaggerHead(head_cfg).state_dict(),
        labels=["calm", "loud"],
        step=5,
    )
    save_checkpoint(tmp_path / "small.pt", ckpt)
    args = ["export", "--checkpoint", str(tmp_path / "small.pt"), "--output-dir", str(tmp_path)]
    result = runner.invoke(app, [*args, "--licence", "CC0 test", "--description", "5-step test"])
    assert result.exit_code == 0, result.output
    assert "parity" in result.output and "max |diff|" in result.output
    tagger = OnnxModel(tmp_path / "small-tagger.onnx")
    assert tagger.info.labels == ("calm", "loud") and tagger.info.task == "multiclass"
    assert tagger.info.licence == "CC0 test" and tagger.info.embedding_dim == 32
    assert tagger.info.description.startswith("5-step test (exported from small.pt")
    again = runner.invoke(app, args)
    assert again.exit_code == 1 and "--force" in again.output
    assert runner.invoke(app, [*args, "--force"]).exit_code == 0


def test_bad_checkpoint_one_line_error(tmp_path: Path) -> None:
    bogus = tmp_path / "model.pt"
    bogus.write_text("not a checkpoint")
    result = runner.invoke(
        app, ["export", "--checkpoint", str(bogus), "--output-dir", str(tmp_path / "o")]
    )
    assert result.exit_code == 1
    assert "model.pt" in result.output and "Traceback" not in result.output


def test_int8_without_calibration_is_a_usage_error_before_any_work(tmp_path: Path) -> None:
    out = tmp_path / "o"
    args = ["export", "--checkpoint", str(tmp_path / "none.pt"), "--output-dir", str(out)]
    result = runner.invoke(app, [*args, "--precision", "int8"])
    assert result.exit_code == 2 and "--calibration" in result.output
    result = runner.invoke(app, [*args, "--calibration", str(tmp_path)])  # fp32 needs none
    assert result.exit_code == 2 and not out.exists()


@pytest.mark.slow  # an ONNX export, then calibration and the float-block search
def test_int8_writes_a_checked_sibling_of_each_model_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    music = tmp_path / "music"
    music.mkdir()
    t = np.arange(22 * 22050) / 22050
    for i in range(40):  # 40 files x 8 windows: 256 calibration + 64 check windows
        tone = np.sin(2 * np.pi * 110 * 1.1**i * t) * (i % 5 + 1) / 10  # each file its own pitch
        write_audio(music / f"{i:02d}.wav", tone + rng.standard_normal(len(t)) / 100, 22050)
    # random weights with BatchNorm statistics of this music: outputs that tell windows apart
    # (default statistics give near-constant embeddings, which no int8 file can match)
    windows = audio_windows(sorted(music.glob("*.wav")), per_file=8)
    save_checkpoint(tmp_path / "small.pt", random_encoder_checkpoint(windows, SMALL))
    args = ["export", "--checkpoint", str(tmp_path / "small.pt"), "--output-dir", str(tmp_path)]
    result = runner.invoke(app, [*args, "--precision", "int8", "--calibration", str(music)])
    assert result.exit_code == 0, result.output
    int8 = OnnxModel(tmp_path / "small-encoder.int8.onnx")
    assert int8.info.embedding_dim == 32 and "float blocks" in result.output
    assert str(tmp_path / "small-encoder.int8.onnx") in result.stdout

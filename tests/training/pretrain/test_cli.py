"""`clmr-embed train pretrain` via the CLI: a SIGKILLed run resumes, and its checkpoint exports."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from clmr_embed.cli import app
from clmr_embed.model import OnnxModel
from tests.fixtures.audio import write_audio
from tests.fixtures.trace import traced_run
from training.weights import load_checkpoint

CONFIG = """
encoder_channels = [8, 8, 8, 16, 16, 16, 16, 16, 16, 32, 32]
projection_hidden_dim = 32
projection_dim = 16
batch_size = 4
segment_seconds = 5.0
workers = 0
max_steps = 8
warmup_steps = 1
checkpoint_every = 2
log_every = 1
precision = "fp32"
device = "cpu"
[augment]
pitch_p = 0.0
reverb_p = 0.0
"""


def _music(root: Path) -> Path:
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        t = np.arange(8 * 22050) / 22050
        audio = 0.3 * np.sin(2 * np.pi * (100 + 150 * i) * t) + 0.05 * rng.standard_normal(len(t))
        write_audio(root / f"track{i}.flac", audio.astype(np.float32), 22050)
    return root


@pytest.mark.slow  # two CLI subprocesses and an export
def test_killed_run_resumes_and_exports(tmp_path: Path) -> None:
    music = _music(tmp_path / "music")
    (tmp_path / "tiny.toml").write_text(CONFIG)
    run = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "clmr_embed", "train", "pretrain", str(music),
        "--output-dir", str(run), "--config", str(tmp_path / "tiny.toml"),
    ]  # fmt: skip
    env = {**os.environ, "CLMR_EMBED_CACHE": str(tmp_path / "cache")}
    proc, log_file = traced_run(cmd, quiet=True, new_session=False, env=env)
    with log_file as log:
        for line in log:  # killed at its first checkpoint event, as soon as the run reached it
            if "checkpoint saved" in line:
                os.kill(proc.pid, signal.SIGKILL)
                break
    proc.wait()
    killed_at = load_checkpoint(run / "latest.pt").step
    assert 0 < killed_at < 8
    resumed = subprocess.run([*cmd, "--resume"], env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert load_checkpoint(run / "latest.pt").step == 8

    out = tmp_path / "export"
    result = CliRunner().invoke(
        app, ["export", "--checkpoint", str(run / "latest.pt"), "--output-dir", str(out)]
    )
    assert result.exit_code == 0, result.output
    encoder = OnnxModel(out / "latest-encoder.onnx")
    assert encoder.info.trained and encoder.info.embedding_dim == 32


@pytest.mark.parametrize(
    "option",
    [
        ["--device", "gpu"],
        ["--precision", "int8"],
        ["--batch-size", "0"],
        ["--max-steps", "0"],
        ["--stop-at-step", "-1"],
    ],
)
def test_bad_options_are_usage_errors_before_any_work(tmp_path: Path, option: list[str]) -> None:
    run = tmp_path / "run"
    args = ["train", "pretrain", str(tmp_path), "--output-dir", str(run), *option]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert option[0] in result.output and not run.exists()

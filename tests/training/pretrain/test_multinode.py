"""Two-node `torchrun` pre-training on 127.0.0.1 (gloo, c10d): rank 0 alone writes, and the run
resumes on one process with the same global batch."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from tests.training.pretrain.test_cli import CONFIG, _music
from training.weights import load_checkpoint

TORCHRUN = Path(sys.executable).with_name("torchrun")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pretrain(music: Path, run: Path, config: Path, *options: str) -> list[str]:
    return [
        "-m", "clmr_embed", "train", "pretrain", str(music), "--output-dir", str(run),
        "--config", str(config), "--device", "cpu", *options,
    ]  # fmt: skip


def _steps(run: Path) -> list[int]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["step"] for line in lines if '"loss"' in line]


@pytest.mark.slow  # two torchrun launchers, then a resumed plain run
def test_two_nodes_train_and_one_process_resumes_with_the_same_global_batch(
    tmp_path: Path,
) -> None:
    if not TORCHRUN.exists():
        pytest.skip("torchrun is not installed beside this python")
    music = _music(tmp_path / "music")
    config = tmp_path / "tiny.toml"
    config.write_text(CONFIG.replace("max_steps = 8", "max_steps = 4"))
    run = tmp_path / "run"
    env = {**os.environ, "CLMR_EMBED_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    rendezvous = [
        "--nnodes", "2", "--nproc-per-node", "1", "--rdzv-backend", "c10d",
        "--rdzv-endpoint", f"127.0.0.1:{_free_port()}", "--rdzv-id", "clmr-test",
    ]  # fmt: skip
    # two processes of 2 windows: the global batch of 4 that the config's batch_size names
    nodes = [
        subprocess.Popen(
            [str(TORCHRUN), *rendezvous, *_pretrain(music, run, config, "--batch-size", "2")],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for _ in range(2)
    ]
    logs = [node.communicate(timeout=600)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], "\n".join(logs)[-3000:]

    saved = load_checkpoint(run / "latest.pt")
    assert saved.step == 4 and saved.train_config["world_size"] == 2
    assert _steps(run) == sorted(set(_steps(run)))  # one writer: every step logged once
    assert not list(run.glob("*.tmp*"))  # no half-written checkpoint from a second writer

    resumed = subprocess.run(
        [sys.executable, *_pretrain(music, run, config, "--resume", "--max-steps", "6")],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert load_checkpoint(run / "latest.pt").step == 6
    assert _steps(run)[-1] == 6

    halved = subprocess.run(
        [sys.executable, *_pretrain(music, run, config, "--resume", "--batch-size", "2")],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert halved.returncode == 1 and "the global batch" in halved.stderr

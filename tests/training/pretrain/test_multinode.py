"""Two-node `torchrun` pre-training on 127.0.0.1 (gloo, c10d): rank 0 alone writes, and the run
resumes on one process with the same global batch, step for step as an uninterrupted run."""

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


def _losses(run: Path) -> dict[int, float]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines if '"loss"' in line]
    assert len(rows) == len({r["step"] for r in rows}), "a step was logged twice"
    return {r["step"]: r["loss"] for r in rows}


@pytest.mark.slow  # two torchrun launchers, then a resumed and an uninterrupted plain run
def test_two_nodes_train_and_one_process_resumes_as_an_uninterrupted_run(tmp_path: Path) -> None:
    if not TORCHRUN.exists():
        pytest.skip("torchrun is not installed beside this python")
    music = _music(tmp_path / "music")
    config = tmp_path / "tiny.toml"
    # noise and reverb on: their signals are drawn for the global batch too
    tiny = CONFIG.replace("max_steps = 8", "max_steps = 6").replace(
        "reverb_p = 0.0", "reverb_p = 0.5"
    )
    config.write_text(tiny + "noise_p = 0.5\n")
    run = tmp_path / "run"
    env = {**os.environ, "CLMR_EMBED_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    # The rendezvous store lives in this process, not in the first node's launcher: a launcher
    # that hosts it and exits first leaves the other's exit poll with a RendezvousConnectionError.
    port = _free_port()
    store = torch.distributed.TCPStore("127.0.0.1", port, is_master=True, wait_for_workers=False)
    rendezvous = [
        "--nnodes", "2", "--nproc-per-node", "1", "--rdzv-backend", "c10d",
        "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "clmr-test",
        "--rdzv-conf", "is_host=false",
    ]  # fmt: skip
    # two processes of 2 windows: the global batch of 4 that the config's batch_size names
    two = _pretrain(music, run, config, "--batch-size", "2", "--stop-at-step", "4")
    nodes = [
        subprocess.Popen(
            [str(TORCHRUN), *rendezvous, *two],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for _ in range(2)
    ]
    logs = [node.communicate(timeout=600)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], "\n".join(logs)[-3000:]
    del store

    saved = load_checkpoint(run / "latest.pt")
    assert saved.step == 4 and saved.train_config["world_size"] == 2
    assert sorted(_losses(run)) == [1, 2, 3, 4]  # one writer: every step logged once
    assert not list(run.glob("*.tmp*"))  # no half-written checkpoint from a second writer

    resumed = subprocess.run(
        [sys.executable, *_pretrain(music, run, config, "--resume")],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert load_checkpoint(run / "latest.pt").step == 6

    # BatchNorm over the global batch, crops and augmentations drawn for the global batch,
    # negatives gathered: two processes for 4 steps then one equal one process all along
    alone = tmp_path / "alone"
    uninterrupted = subprocess.run(
        [sys.executable, *_pretrain(music, alone, config)],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-3000:]
    expected, got = _losses(alone), _losses(run)
    assert sorted(got) == sorted(expected) == list(range(1, 7))
    assert max(abs(got[k] - expected[k]) for k in expected) < 1e-4, (got, expected)
    assert len(set(expected.values())) > 1  # the loss moves: the comparison is not vacuous

    halved = subprocess.run(
        [sys.executable, *_pretrain(music, run, config, "--resume", "--batch-size", "2")],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert halved.returncode == 1 and "the global batch" in halved.stderr

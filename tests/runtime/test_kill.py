"""Crash safety: SIGKILL `extract` at random moments; nothing finished is lost or recomputed."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from clmr_embed.store import open_store
from tests.fixtures.audio import write_sine

N_KILLS = 12


def _library(root: Path) -> Path:
    root.mkdir()
    rng = random.Random(7)
    for i in range(24):
        write_sine(root / f"track{i:02d}.wav", 110 * (1 + i % 7), rng.uniform(1.0, 4.0), 8000)
    (root / "broken.mp3").write_bytes(b"\x00not audio" * 50)
    return root


def _command(lib: Path, out: Path, model: Path) -> list[str]:
    return [
        sys.executable, "-m", "clmr_embed", "extract", str(lib), str(out),
        "--model", str(model), "--workers", "0", "--batch-size", "4", "--commit-every", "1",
    ]  # fmt: skip


def _events(trace: Path) -> list[tuple[str, str]]:
    if not trace.exists():
        return []
    return [tuple(line.split()) for line in trace.read_text().splitlines() if line.strip()]


@pytest.mark.slow
def test_sigkill_at_random_moments(tmp_path: Path, tiny_tagger: Path) -> None:
    lib = _library(tmp_path / "lib")
    reference = tmp_path / "reference.h5"
    began = time.perf_counter()
    subprocess.run(_command(lib, reference, tiny_tagger), capture_output=True, check=False)
    full_run = time.perf_counter() - began

    out = tmp_path / "killed.h5"
    rng = random.Random(20261125)
    finished: set[str] = set()  # tracks a trace showed as journaled before some kill
    kills = completed = 0
    for attempt in range(N_KILLS * 3):
        trace = tmp_path / f"trace{attempt}.txt"
        env = {**os.environ, "CLMR_EMBED_TRACE": str(trace)}
        proc = subprocess.Popen(
            _command(lib, out, tiny_tagger),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.3, full_run))
        killed = proc.poll() is None
        if killed:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
        events = _events(trace)
        recomputed = {tid for event, tid in events if event == "start"} & finished
        assert not recomputed, f"finished tracks recomputed after a kill: {recomputed}"
        finished |= {tid for event, tid in events if event == "done"}
        if out.exists():
            with open_store(out) as store:  # the store opens after every kill
                assert len(store) >= 0
        if kills >= N_KILLS:
            break
        if not killed:
            # The resumed run finished before its kill (little was left): check it, then start a
            # new series of kills from an empty store, so that every attempt has work to cut.
            _assert_same(reference, out)
            shutil.rmtree(out.with_name(out.name + ".journal"), ignore_errors=True)
            out.unlink()
            finished.clear()
            completed += 1
    assert kills >= 10, f"only {kills} runs could be killed ({completed} completed first)"

    final = subprocess.run(_command(lib, out, tiny_tagger), capture_output=True, check=False)
    assert final.returncode == 1  # broken.mp3 is still broken
    _assert_same(reference, out)


def _assert_same(reference: Path, out: Path) -> None:
    """The store equals an uninterrupted run's: same tracks, errors, embeddings and starts."""
    with open_store(reference) as ref, open_store(out) as got:
        assert sorted(got.paths) == sorted(ref.paths)
        assert got.errors.keys() == ref.errors.keys() == {"broken.mp3"}
        for path in ref.paths:
            np.testing.assert_allclose(got.embeddings(path), ref.embeddings(path), atol=1e-5)
            np.testing.assert_array_equal(got.starts_s(path), ref.starts_s(path))

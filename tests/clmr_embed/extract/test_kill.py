"""Crash safety: SIGKILL `extract` right after random events; nothing finished is lost or redone."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from clmr_embed.store import open_store
from tests.fixtures.audio import write_sine
from tests.fixtures.trace import Event, events, traced_run

N_KILLS = 12
TRACKS = 24


def _library(root: Path) -> Path:
    root.mkdir()
    rng = random.Random(7)
    for i in range(TRACKS):
        write_sine(root / f"track{i:02d}.wav", 110 * (1 + i % 7), rng.uniform(1.0, 4.0), 8000)
    (root / "broken.mp3").write_bytes(b"\x00not audio" * 50)
    return root


def _command(lib: Path, out: Path, model: Path) -> list[str]:
    return [
        sys.executable, "-m", "clmr_embed", "extract", str(lib), str(out),
        "--model", str(model), "--workers", "0", "--batch-size", "4", "--commit-every", "1",
    ]  # fmt: skip


def _run_and_kill(command: list[str], after: int) -> tuple[list[Event], bool]:
    """Run `command`, SIGKILL it right after its `after`-th logged event; (events, killed).

    The event log (`--log-file`) is a pipe this test reads, so the kill follows an event the
    run has really reached (a "start" when a track's first batch ran, a "done" once it was
    journaled), never a guess at how long the run takes. A run with fewer events finishes.
    """
    proc, log_file = traced_run(command, quiet=True, new_session=False)
    seen: list[Event] = []
    killed = False
    with log_file as log:
        arriving = events(log)
        for event in arriving:
            seen.append(event)
            if len(seen) == after and proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                killed = True
                break
        proc.wait()
        seen.extend(arriving)  # what it wrote before the signal landed
    return seen, killed


@pytest.mark.slow
def test_sigkill_right_after_random_events(tmp_path: Path, tiny_tagger: Path) -> None:
    lib = _library(tmp_path / "lib")
    reference = tmp_path / "reference.h5"
    subprocess.run(_command(lib, reference, tiny_tagger), capture_output=True, check=False)

    out = tmp_path / "killed.h5"
    rng = random.Random(20261125)
    finished: set[str] = set()  # tracks a trace showed as journaled before some kill
    started: set[str] = set()  # tracks the model ran on (a kill may land before their "done")
    kills = completed = 0
    for _ in range(N_KILLS * 3):
        events, killed = _run_and_kill(_command(lib, out, tiny_tagger), rng.randint(1, TRACKS))
        recomputed = {tid for event, tid in events if event == "start"} & finished
        assert not recomputed, f"finished tracks recomputed after a kill: {recomputed}"
        finished |= {tid for event, tid in events if event == "done"}
        started |= {tid for event, tid in events if event == "start"}
        with warnings.catch_warnings():  # journaled tracks may wait for a merge: fine
            warnings.simplefilter("ignore")
            with open_store(out) as store:  # opens after every kill
                assert set(store.track_ids) <= started  # no track the model never ran
        if killed:
            kills += 1
            if kills >= N_KILLS:
                break
            continue
        # The resumed run finished before its event came (little was left): check it, then
        # start a new series of kills from an empty store, so that every run has work to cut.
        _assert_same(reference, out)
        shutil.rmtree(out.with_name(out.name + ".journal"), ignore_errors=True)
        out.unlink()
        finished.clear()
        started.clear()
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

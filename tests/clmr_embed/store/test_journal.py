"""Tests of clmr_embed.store.journal: recovery of a killed writer's entries and marker."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from clmr_embed.store import open_store, open_writer
from tests.fixtures.store import HEADER, record, run_child


def test_journal_recovery_after_kill(tmp_path: Path) -> None:
    out = tmp_path / "out.h5"
    child = run_child(
        f"w = open_writer(Path({str(out)!r}), HEADER)\n"
        "for t in 'abc':\n    w.add_track(record(t))\n"
        "w.add_error('bad.mp3', 'not audio')\nos._exit(0)\n"
    )
    assert child.returncode == 0, child.stderr
    with pytest.warns(UserWarning, match="3 tracks .* not merged"), open_store(out) as store:
        assert len(store) == 0  # readers see committed tracks only
    with open_writer(out, HEADER) as writer:
        assert writer.pending == 0  # recovered and merged on open
        assert set(writer.tracks) == {"a", "b", "c"} and writer.errors == {"bad.mp3": "not audio"}
    with open_store(out) as store:
        assert store.track_ids == ["a", "b", "c"] and store.errors == {"bad.mp3": "not audio"}
        np.testing.assert_array_equal(store.embeddings("b"), record("b").embeddings)


def test_force_run_killed_before_its_first_commit_resumes(tmp_path: Path) -> None:
    out = tmp_path / "out.h5"
    with open_writer(out, HEADER) as writer:
        writer.add_track(record("old"))
    child = run_child(
        f"h = dataclasses.replace(HEADER, model_sha256='b' * 64)\n"
        f"w = open_writer(Path({str(out)!r}), h, force=True)\n"
        "w.add_track(record('new'))\nos._exit(0)\n"
    )
    assert child.returncode == 0, child.stderr
    other = dataclasses.replace(HEADER, model_sha256="b" * 64)
    with open_writer(out, other) as writer:  # no --force: continues the forced run
        assert set(writer.tracks) == {"new"}
    with open_store(out) as store:
        assert store.track_ids == ["new"] and store.header == other

"""Tests of clmr_embed.store.legacy: schema-1 stores read as before and upgrade on first write."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from clmr_embed.store import open_store, open_writer
from tests.fixtures.store import HEADER, assert_tidy, record, run_child, write_schema1

TRACKS = [record("a", flags=("short",)), record("b", n=5)]


def test_schema1_stores_stay_readable(tmp_path: Path) -> None:
    out = tmp_path / "old.h5"
    write_schema1(out, HEADER, TRACKS)
    with open_store(out) as store:
        assert store.schema_version == 1 and store.generation == 0 and store.segments == ()
        assert store.header == HEADER  # engine and precision: what schema 1 was made with
        assert store.track_ids == ["a", "b"] and store.errors == {"bad.wav": "broken"}
        assert store.flags("a") == ("short",) and store.attrs("b")["n_windows"] == 5
        np.testing.assert_array_equal(store.embeddings("b"), TRACKS[1].embeddings)
        assert store.verify() == {}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.h5"]  # reading changes nothing


def test_first_write_upgrades_with_a_message(tmp_path: Path) -> None:
    out = tmp_path / "old.h5"
    write_schema1(out, HEADER, TRACKS)
    with pytest.warns(UserWarning, match="upgraded from schema 1 to 2: 2 tracks rewritten"):
        writer = open_writer(out, HEADER)
    with writer:
        assert set(writer.tracks) == {"a", "b"} and writer.errors == {"bad.wav": "broken"}
        writer.add_track(record("c"))
    with open_store(out) as store:
        assert store.schema_version == 2 and store.generation == 2  # the upgrade, one commit
        assert store.track_ids == ["a", "b", "c"] and store.errors == {"bad.wav": "broken"}
        np.testing.assert_array_equal(store.embeddings("a"), TRACKS[0].embeddings)
        np.testing.assert_allclose(store.mean("b"), TRACKS[1].embeddings.mean(0), atol=1e-6)
    assert_tidy(out)


def test_a_killed_schema1_writers_journal_still_merges(tmp_path: Path) -> None:
    out = tmp_path / "old.h5"
    write_schema1(out, HEADER, TRACKS)
    journal = out.with_name("old.h5.journal")
    child = run_child(  # journal entries as schema 1 spelled their fingerprint
        "from clmr_embed.store.journal import Journal, track_entry\n"
        f"j = Journal(Path({str(journal)!r}))\n"
        "r = record('late')\n"
        "meta = {'kind': 'track', 'track_id': 'late', 'fingerprint': '1:' + HEADER.fingerprint(),"
        " 'attrs': {'relpath': r.relpath, 'content_sha256': r.content_sha256, 'duration_s': 1.0,"
        " 'source_rate': 44100, 'channels': 2, 'n_windows': 3, 'flags': [], 'alias_of': ''}}\n"
        "j.write(track_entry('late'), meta, {'embeddings': r.embeddings, 'starts_s': r.starts_s})\n"
    )
    assert child.returncode == 0, child.stderr
    with pytest.warns(UserWarning, match="upgraded"), open_writer(out, HEADER) as writer:
        assert "late" in writer.tracks and writer.pending == 0
    with open_store(out) as store:
        np.testing.assert_array_equal(store.embeddings("late"), record("late").embeddings)


def test_force_replaces_a_schema1_store_at_the_first_commit(tmp_path: Path) -> None:
    out = tmp_path / "old.h5"
    write_schema1(out, HEADER, TRACKS)
    with open_writer(out, HEADER, force=True) as writer:
        assert writer.tracks == {}
        writer.add_track(record("new"))
        with pytest.warns(UserWarning, match="not merged"), open_store(out) as store:
            assert store.schema_version == 1 and store.track_ids == ["a", "b"]  # until then
    with open_store(out) as store:
        assert store.schema_version == 2 and store.track_ids == ["new"]

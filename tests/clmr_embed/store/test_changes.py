"""Tests of clmr_embed.store.changes: replacing, aliases, pruning, detaching, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from clmr_embed.store import open_store, open_writer
from tests.fixtures.store import HEADER, record


def test_re_add_replaces(tmp_path: Path) -> None:
    out = tmp_path / "out.h5"
    with open_writer(out, HEADER) as writer:
        writer.add_track(record("a", n=3))
    with open_writer(out, HEADER) as writer:
        assert writer.is_current("a", "c-a-0") and not writer.is_current("a", "c-a-1")
        writer.add_track(record("a", seed=1, n=5))
    with open_store(out) as store:
        assert len(store) == 1 and store.attrs("a")["n_windows"] == 5
        np.testing.assert_array_equal(store.embeddings("a"), record("a", seed=1, n=5).embeddings)


def test_alias_resolves_to_its_target(tmp_path: Path) -> None:
    out = tmp_path / "out.h5"
    with open_writer(out, HEADER) as writer:
        writer.add_track(record("a", content="same"))
        assert writer.find_content("same") == "a" and writer.find_content("other") is None
        writer.add_alias("b", "copies/b.wav", "same", "a")
        assert writer.find_content("same") == "a"  # aliases are never targets
        assert writer.tracks["b"].alias_of == "a" and writer.is_current("b", "same")
        with pytest.raises(ValueError, match="target"):
            writer.add_alias("x", "x.wav", "different", "a")
    with open_store(out) as store:
        assert store.paths == ["copies/b.wav", "music/a.wav"] and len(store) == 2
        np.testing.assert_array_equal(store.embeddings("copies/b.wav"), store.embeddings("a"))
        np.testing.assert_array_equal(store.mean("b"), store.mean("a"))
        assert store.attrs("b")["alias_of"] == "a" and store.attrs("b")["relpath"] == "copies/b.wav"
        paths, means = store.means()
        np.testing.assert_array_equal(means[0], means[1])


def test_prune_removes_and_keeps_aliases_embedded(tmp_path: Path) -> None:
    out = tmp_path / "out.h5"
    a = record("a", content="same")
    with open_writer(out, HEADER) as writer:
        writer.add_track(a)
        writer.add_track(record("z"))
        writer.add_alias("b", "b.wav", "same", "a")
        writer.add_alias("c", "c.wav", "same", "a")
    with open_writer(out, HEADER) as writer:
        writer.remove("z")
        writer.remove("a")  # b is promoted (keeps a's embeddings), c re-points to b
        assert writer.tracks["b"].alias_of == "" and writer.tracks["c"].alias_of == "b"
        assert writer.find_content("same") == "b"
    with open_store(out) as store:
        assert store.track_ids == ["b", "c"]
        np.testing.assert_array_equal(store.embeddings("b"), a.embeddings)
        np.testing.assert_array_equal(store.embeddings("c.wav"), a.embeddings)


def test_changed_content_detaches_aliases(tmp_path: Path) -> None:
    out = tmp_path / "out.h5"
    with open_writer(out, HEADER) as writer:
        writer.add_track(record("a", content="old"))
        writer.add_alias("b", "b.wav", "old", "a")
        writer.add_track(record("a", seed=1, content="new"))  # a.wav was edited
        assert writer.tracks["b"].alias_of == "" and writer.is_current("b", "old")
    with open_store(out) as store:
        np.testing.assert_array_equal(store.embeddings("b"), record("a", content="old").embeddings)
        np.testing.assert_array_equal(store.embeddings("a"), record("a", seed=1).embeddings)


def test_errors_recorded_replaced_and_cleared(tmp_path: Path) -> None:
    out = tmp_path / "out.h5"
    with open_writer(out, HEADER) as writer:
        writer.add_error("music/a.wav", "first")
        writer.add_error("music/a.wav", "second")
        writer.add_error("x/y.mp3", "truncated")
    with open_store(out) as store:
        assert store.errors == {"music/a.wav": "second", "x/y.mp3": "truncated"}
    with open_writer(out, HEADER) as writer:
        writer.add_track(record("a"))  # the file now succeeds: its error goes
        writer.clear_error("x/y.mp3")
        writer.clear_error("never/failed.wav")
    with open_store(out) as store:
        assert store.errors == {} and store.track_ids == ["a"]

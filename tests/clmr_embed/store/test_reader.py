"""Tests of clmr_embed.store.reader: reading tracks, aliases and means back; bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from clmr_embed.errors import StoreError
from clmr_embed.store import open_store, open_writer
from tests.fixtures.store import DIM, HEADER, assert_tidy, record


def test_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "out.h5"
    a, b = record("a", n=4, flags=("silent",)), record("b", n=1, flags=("short",))
    with open_writer(out, HEADER) as writer:
        assert out.exists()  # the empty store is written at once
        writer.add_track(a)
        writer.add_track(b)
        assert writer.pending == 2
        writer.commit()
        assert writer.pending == 0 and writer.last_commit_s > 0
    assert_tidy(out)
    with open_store(out) as store:
        assert store.header == HEADER
        assert len(store) == 2 and "a" in store and "music/b.wav" in store and "zz" not in store
        assert store.paths == ["music/a.wav", "music/b.wav"] and store.track_ids == ["a", "b"]
        np.testing.assert_array_equal(store.embeddings("a"), a.embeddings)
        np.testing.assert_array_equal(store.starts_s("music/a.wav"), a.starts_s)
        np.testing.assert_allclose(store.mean(Path("music/a.wav")), a.embeddings.mean(0), atol=1e-6)
        assert store.embeddings("b").dtype == np.float32 and store.embeddings("b").shape == (1, 8)
        assert store.flags("a") == ("silent",) and store.flags("b") == ("short",)
        attrs = store.attrs("a")
        assert attrs["n_windows"] == 4 and attrs["source_rate"] == 44100
        assert attrs["channels"] == 2 and attrs["duration_s"] == pytest.approx(10.0)
        assert attrs["content_sha256"] == "c-a-0" and attrs["alias_of"] == ""
        paths, means = store.means()
        assert paths == ["music/a.wav", "music/b.wav"] and means.shape == (2, DIM)
        np.testing.assert_allclose(means[1], b.embeddings[0])
        with pytest.raises(StoreError, match="nope.wav"):
            store.embeddings("nope.wav")


def test_unreadable_files_name_the_file(tmp_path: Path) -> None:
    h5py = pytest.importorskip("h5py")
    with pytest.raises(StoreError, match="missing.h5 does not exist"):
        open_store(tmp_path / "missing.h5")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5 at all" * 10)
    with pytest.raises(StoreError, match="junk.h5 is not a readable HDF5"):
        open_store(junk)
    with pytest.raises(StoreError, match="junk.h5"):
        open_writer(junk, HEADER)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = [1, 2]
    with pytest.raises(StoreError, match="foreign.h5 is an HDF5 file but not a clmr-embed store"):
        open_store(foreign)
    with pytest.raises(StoreError, match="foreign.h5 is an HDF5 file that is not a clmr-embed"):
        open_writer(foreign, HEADER, force=True)  # --force replaces only stores
    with pytest.raises(StoreError, match="junk.h5 is not an HDF5 file"):
        open_writer(junk, HEADER, force=True)
    with h5py.File(foreign, "r") as f:
        assert list(f["x"][()]) == [1, 2]  # untouched
    assert junk.read_bytes() == b"not hdf5 at all" * 10

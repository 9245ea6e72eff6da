"""Tests of clmr_embed.store.layout: the HDF5 layout, header attrs and the catalog."""

from __future__ import annotations

from pathlib import Path

import pytest

from clmr_embed.store import SCHEMA_VERSION, open_store, open_writer
from tests.fixtures.store import DIM, HEADER, record


def test_layout_and_catalog(tmp_path: Path) -> None:
    h5py = pytest.importorskip("h5py")
    out = tmp_path / "out.h5"
    with open_writer(out, HEADER) as writer:
        writer.add_track(record("a", flags=("short",)))
        writer.add_alias("b", "b.wav", "c-a-0", "a")
        writer.add_error("bad.wav", "broken")
    with open_store(out) as store:
        fast = {tid: store.attrs(tid) for tid in store.track_ids}, store.errors
    with h5py.File(out, "r+") as f:
        assert f.attrs["schema_version"] == SCHEMA_VERSION
        assert f.attrs["model_sha256"] == HEADER.model_sha256 and f.attrs["hop_samples"] == 59049
        for key in ("created", "updated", "clmr_embed_version", "preprocessing", "model_trained"):
            assert key in f.attrs
        assert f["tracks/a/embeddings"].shape == (3, DIM) and f["tracks/a/mean"].shape == (DIM,)
        assert f["tracks/a"].attrs["flags"] == '["short"]' and len(f["tracks/b"]) == 0
        assert len(f["errors"]) == 1
        del f["catalog"]  # the per-group attributes alone are enough to read a store
    with open_store(out) as store:  # and they agree with the catalog
        assert ({tid: store.attrs(tid) for tid in store.track_ids}, store.errors) == fast

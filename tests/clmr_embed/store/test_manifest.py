"""Tests of clmr_embed.store.manifest: generation, reserved header fields, mode, renames."""

from __future__ import annotations

import dataclasses
import os
import shutil
import stat
from pathlib import Path

import pytest

from clmr_embed.errors import StoreError
from clmr_embed.roots import LibraryRoot
from clmr_embed.store import copy_store, open_store, open_writer
from clmr_embed.store.manifest import describe_file
from tests.fixtures.store import HEADER, record


def test_generation_counts_commits_that_change_content(tmp_path: Path) -> None:
    out = tmp_path / "out.h5"
    seen = []
    with open_writer(out, HEADER) as writer:
        seen.append(writer.generation)
        writer.commit()  # nothing journaled: nothing published
        seen.append(writer.generation)
        for tid in "ab":
            writer.add_track(record(tid))
            writer.commit()
            with open_store(out) as store:
                seen.append(store.generation)
        writer.compact()  # same content: same generation
        seen.append(writer.generation)
    assert seen == [0, 0, 1, 2, 2]
    other = dataclasses.replace(HEADER, model_sha256="b" * 64)
    with open_writer(out, other, force=True) as writer:
        writer.add_track(record("c"))
    with open_store(out) as store:  # a forced restart counts on: caches see the change
        assert store.generation == 3 and store.track_ids == ["c"]


def test_library_roots_are_recorded_newest_first_and_kept_by_merges(tmp_path: Path) -> None:
    out = tmp_path / "out.h5"
    music, more = LibraryRoot(tmp_path / "music"), LibraryRoot(tmp_path / "more", "more/")
    with open_writer(out, HEADER) as writer:
        writer.record_roots([music])
        writer.add_track(record("a"))
    with open_store(out) as store:
        assert store.roots == (music,) and store.generation == 1
    with open_writer(out, HEADER) as writer:  # another folder, no new track: roots only
        writer.record_roots([more])
    with open_store(out) as store:
        assert store.roots == (more, music) and store.generation == 1  # content unchanged
    with open_writer(out, HEADER) as writer:
        writer.compact()
    with open_store(out) as store:
        assert store.roots == (more, music)
    with open_writer(out, HEADER, force=True) as writer:  # a new store: this run's roots only
        writer.record_roots([music])
        writer.add_track(record("b"))
    with open_store(out) as store:
        assert store.roots == (music,)


def test_engine_precision_and_shards_are_recorded(tmp_path: Path) -> None:
    out = tmp_path / "out.h5"
    header = dataclasses.replace(HEADER, engine="openvino", precision="int8")
    with open_writer(out, header) as writer:
        writer.add_track(record("a"))
    with open_store(out) as store:
        assert (store.header.engine, store.header.precision) == ("openvino", "int8")
        assert store.header == header and store.shards == ()


def test_a_replaced_manifest_keeps_its_mode(tmp_path: Path) -> None:
    out = tmp_path / "out.h5"
    open_writer(out, HEADER).close()
    os.chmod(out, 0o640)
    with open_writer(out, HEADER) as writer:
        writer.add_track(record("a"))
    assert stat.S_IMODE(out.stat().st_mode) == 0o640


def test_a_store_renamed_without_its_folder_says_so(tmp_path: Path) -> None:
    out = tmp_path / "out.h5"
    with open_writer(out, HEADER) as writer:
        writer.add_track(record("a"))
    moved = tmp_path / "moved.h5"
    out.rename(moved)
    with pytest.raises(StoreError, match="rename the folder out.h5.d to moved.h5.d"):
        open_store(moved)
    out.with_name("out.h5.d").rename(tmp_path / "moved.h5.d")
    with open_store(moved) as store:  # both renamed: fine
        assert store.track_ids == ["a"]


def test_describe_file_tells_stores_from_other_files(tmp_path: Path) -> None:
    h5py = pytest.importorskip("h5py")
    out = tmp_path / "out.h5"
    assert describe_file(out) == ""  # missing: fine to create
    open_writer(out, HEADER).close()
    assert describe_file(out) == ""
    text = tmp_path / "notes.h5"
    text.write_text("my notes")
    assert describe_file(text) == "not an HDF5 file"
    with h5py.File(tmp_path / "data.h5", "w") as f:
        f["x"] = [1]
    assert describe_file(tmp_path / "data.h5") == "an HDF5 file that is not a clmr-embed store"


def test_a_copied_store_reads_the_same_and_keeps_its_own_folder(tmp_path: Path) -> None:
    out = tmp_path / "out.h5"
    with open_writer(out, HEADER) as writer:
        for tid in "ab":
            writer.add_track(record(tid))
            writer.commit()
    copy = copy_store(out, tmp_path / "copy.h5")
    with open_store(out) as store:
        paths, means = store.means()
    shutil.rmtree(tmp_path / "out.h5.d")  # the copy needs nothing of the original
    with open_store(copy) as store:
        copied_paths, copied_means = store.means()
        assert store.generation == 2
    assert copied_paths == paths and (copied_means == means).all()
    with pytest.raises(StoreError, match="already exists"):
        copy_store(copy, copy)

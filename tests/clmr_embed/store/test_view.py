"""Tests of clmr_embed.store.view: checksummed reads; seeded damage names the track, never lies."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from clmr_embed.errors import StoreDamagedError, StoreError
from clmr_embed.pooling import track_mean
from clmr_embed.store import open_store, open_writer
from clmr_embed.store.segment import MEANS
from tests.fixtures.store import HEADER, record

TRACKS = [f"t{i:02d}" for i in range(12)]
SEEDS = range(20)


def _store(tmp_path: Path) -> tuple[Path, Path]:
    """A store of TRACKS (plus an alias of t00) in one segment; (store, segment file)."""
    out = tmp_path / "out.h5"
    with open_writer(out, HEADER) as writer:
        for i, tid in enumerate(TRACKS):
            writer.add_track(record(tid, n=1 + i % 4))
        writer.add_alias("dup", "copies/t00.wav", "c-t00-0", "t00")
    with open_store(out) as store:
        (segment,) = store.segments
    return out, out.with_name("out.h5.d") / segment.name


def _chunk(segment: Path, tid: str, name: str = "embeddings") -> tuple[int, int]:
    """(byte offset, size) of a track dataset's one chunk in the segment file."""
    with h5py.File(segment, "r") as f:
        info = f[f"tracks/{tid}/{name}"].id.get_chunk_info(0)
    return info.byte_offset, info.size


def _flip(path: Path, offset: int, count: int, rng: random.Random) -> None:
    data = bytearray(path.read_bytes())
    for i in range(count):
        data[offset + i] ^= rng.randrange(1, 256)
    path.write_bytes(bytes(data))


def _every_read(out: Path) -> dict[str, object]:
    """Each read of every track -> its value or the exception it raised."""
    results: dict[str, object] = {}
    with open_store(out) as store:
        for tid in store.track_ids:
            for name in ("embeddings", "starts_s", "mean"):
                try:
                    results[f"{tid}/{name}"] = getattr(store, name)(tid)
                except Exception as exc:
                    results[f"{tid}/{name}"] = exc
        try:
            results["means"] = store.means()[1]
        except Exception as exc:
            results["means"] = exc
    return results


@pytest.mark.parametrize("seed", SEEDS)
def test_flipped_bytes_in_one_track_name_it_and_spare_the_others(tmp_path: Path, seed: int) -> None:
    out, segment = _store(tmp_path)
    rng = random.Random(seed)
    victim, name = rng.choice(TRACKS), rng.choice(["embeddings", "starts_s", "mean"])
    offset, size = _chunk(segment, victim, name)
    start = rng.randrange(size)
    _flip(segment, offset + start, rng.randint(1, min(64, size - start)), rng)
    with open_store(out) as store:
        relpath = f"music/{victim}.wav"
        with pytest.raises(StoreDamagedError, match=f"track {relpath} \\({victim}\\)"):
            getattr(store, name)(victim)
        if name == "mean":  # the segment's one MEANS dataset still holds the true vector
            paths, vectors = store.means()
            want = track_mean(record(victim, n=1 + TRACKS.index(victim) % 4).embeddings)
            np.testing.assert_array_equal(vectors[paths.index(relpath)], want)
        for tid in TRACKS:
            if tid != victim:  # the others read exactly what was written
                n = 1 + TRACKS.index(tid) % 4
                np.testing.assert_array_equal(store.embeddings(tid), record(tid, n=n).embeddings)
        damaged = store.verify()
    assert set(damaged) == {victim} | ({"dup"} if victim == "t00" else set())
    assert "checksum" in damaged[victim]


def test_damaged_means_fall_back_to_each_tracks_own_mean(tmp_path: Path) -> None:
    out, segment = _store(tmp_path)
    with h5py.File(segment, "r") as f:
        info = f[MEANS].id.get_chunk_info(0)
    _flip(segment, info.byte_offset + info.size // 2, 8, random.Random(3))
    with open_store(out) as store:
        paths, vectors = store.means()
        for path, vector in zip(paths, vectors, strict=True):
            np.testing.assert_array_equal(vector, store.mean(path))
    _flip(segment, _chunk(segment, "t03", "mean")[0], 4, random.Random(4))  # and t03's own mean
    with open_store(out) as store, pytest.raises(StoreDamagedError, match="t03"):
        store.means()


@pytest.mark.parametrize("seed", SEEDS)
def test_random_garbage_anywhere_reads_true_values_or_a_store_error(
    tmp_path: Path, seed: int
) -> None:
    out, segment = _store(tmp_path)
    clean = _every_read(out)
    rng = random.Random(1000 + seed)
    target = rng.choice([segment, segment.with_suffix(".json"), out])
    size = target.stat().st_size
    start = rng.randrange(size)
    count = min(4096, size - start)
    data = bytearray(target.read_bytes())
    data[start : start + count] = rng.randbytes(count)
    target.write_bytes(bytes(data))
    try:
        damaged = _every_read(out)
    except StoreError:
        return  # the manifest or every copy of the track list is unreadable: said so
    for key, value in damaged.items():
        if isinstance(value, Exception):
            assert isinstance(value, StoreDamagedError), f"{key}: {value!r}"
            assert "track music/" in str(value) or "track copies/" in str(value), str(value)
        else:
            np.testing.assert_array_equal(value, clean[key], err_msg=key)  # never wrong values


def test_a_lost_sidecar_falls_back_to_the_catalog_inside_the_segment(tmp_path: Path) -> None:
    out, segment = _store(tmp_path)
    segment.with_suffix(".json").write_text("{}")
    with open_store(out) as store:
        assert len(store) == len(TRACKS) + 1 and store.verify() == {}


def test_an_unopenable_segment_still_lists_and_names_its_tracks(tmp_path: Path) -> None:
    out, segment = _store(tmp_path)
    _flip(segment, 0, 64, random.Random(0))  # the superblock
    with open_store(out) as store:
        assert len(store) == len(TRACKS) + 1  # from the sidecar catalog
        with pytest.raises(StoreDamagedError, match="track music/t03.wav .* cannot be opened"):
            store.embeddings("t03")
        assert set(store.verify()) == {*TRACKS, "dup"}
    segment.unlink()
    with open_store(out) as store, pytest.raises(StoreDamagedError, match="t05.* is missing"):
        store.mean("t05")


def test_unreadable_manifest_and_track_list_raise_store_errors(tmp_path: Path) -> None:
    out, segment = _store(tmp_path)
    segment.with_suffix(".json").write_text("{}")
    _flip(segment, 0, 64, random.Random(1))
    with pytest.raises(StoreDamagedError, match="beyond listing its tracks"):
        open_store(out)
    _flip(out, out.stat().st_size // 2, 256, random.Random(2))
    with pytest.raises(StoreError, match="out.h5"):
        open_store(out)


def _count_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every per-track read of the segments (SegmentSet._read)."""
    from clmr_embed.store.view import SegmentSet

    reads: list[str] = []
    original = SegmentSet._read

    def counting(self: SegmentSet, source: str, names: tuple[str, ...]) -> dict[str, Any]:
        reads.append(source)
        return original(self, source, names)

    monkeypatch.setattr(SegmentSet, "_read", counting)
    return reads


def test_an_intact_segment_is_verified_by_its_digest_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, _ = _store(tmp_path)
    reads = _count_reads(monkeypatch)
    with open_store(out) as store:
        assert store.verify() == {} and reads == []  # one hash, no per-track reads
        segments = store._segments.segments  # as in a store written before digests existed
        for name, segment in segments.items():
            segments[name] = dataclasses.replace(
                segment, info=dataclasses.replace(segment.info, sha256="")
            )
        assert store.verify() == {} and sorted(reads) == TRACKS  # every track read instead


def test_a_changed_segment_is_read_track_by_track(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, segment = _store(tmp_path)
    offset, _ = _chunk(segment, "t03")
    _flip(segment, offset, 1, random.Random(0))
    reads = _count_reads(monkeypatch)
    with open_store(out) as store:
        assert set(store.verify()) == {"t03"} and sorted(reads) == TRACKS

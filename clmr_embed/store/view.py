"""The committed state of a store: its open segments merged oldest first, read and verified."""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from clmr_embed.digest import file_sha256
from clmr_embed.errors import StoreDamagedError
from clmr_embed.store.journal import Arrays
from clmr_embed.store.layout import ARRAYS, LEGACY_SCHEMA, READ_ERRORS, open_h5
from clmr_embed.store.manifest import Manifest
from clmr_embed.store.segment import (
    MEANS,
    Segment,
    SegmentCatalog,
    SegmentInfo,
    mean_rows,
    open_segment,
    segment_folder,
)


@dataclass
class StoreIndex:
    """The state after applying segment catalogs oldest first: the latest change per key wins."""

    tracks: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> attrs (flags a tuple)
    location: dict[str, str] = field(default_factory=dict)  # embedded id -> segment with arrays
    errors: dict[str, str] = field(default_factory=dict)  # relpath -> reason
    damaged: dict[str, str] = field(default_factory=dict)  # embedded id -> why it is unreadable
    removed: set[str] = field(default_factory=set)  # ids last removed (merges keep these)
    cleared: set[str] = field(default_factory=set)  # relpaths whose error was last cleared

    def apply(self, name: str, catalog: SegmentCatalog, problem: str = "") -> None:
        """Apply segment `name`; `problem` marks its arrays unreadable (a damaged file)."""
        for tid in catalog.removed:
            self._forget(tid)
            self.removed.add(tid)
        for relpath in catalog.cleared:
            self.errors.pop(relpath, None)
            self.cleared.add(relpath)
        for tid, attrs in catalog.tracks.items():
            self._forget(tid)
            self.tracks[tid] = dict(attrs, flags=tuple(attrs["flags"]))
            if attrs["alias_of"]:
                continue
            reason = catalog.damaged.get(tid) or problem
            if reason:
                self.damaged[tid] = reason
            else:
                self.location[tid] = name
        self.errors.update(catalog.errors)
        self.cleared -= set(catalog.errors)

    def source(self, track_id: str) -> str:
        """The id whose arrays a track or alias uses."""
        return str(self.tracks[track_id]["alias_of"]) or track_id

    def _forget(self, track_id: str) -> None:
        self.tracks.pop(track_id, None)
        self.location.pop(track_id, None)
        self.damaged.pop(track_id, None)
        self.removed.discard(track_id)


class SegmentSet:
    """Open segments and their index; a snapshot (segment files never change once written)."""

    def __init__(self, store: Path, embedding_dim: int) -> None:
        self.store = store
        self.embedding_dim = embedding_dim
        self.segments: dict[str, Segment] = {}  # name -> open segment, oldest first
        self.index = StoreIndex()
        self.skipped: list[str] = []  # segments left out: even their track list is unreadable
        self._groups: dict[str, h5py.h5g.GroupID] = {}  # segment -> its open /tracks group

    def add(self, segment: Segment) -> None:
        """Apply a segment newer than all others."""
        self.segments[segment.info.name] = segment
        self.index.apply(segment.info.name, segment.catalog, segment.problem)

    def drop(self, names: Iterable[str]) -> None:
        """Close segments a merge replaced (their tracks now live in newer ones)."""
        for name in names:
            segment = self.segments.pop(name)
            self._groups.pop(name, None)
            if segment.file is not None:
                segment.file.close()

    def arrays(self, track_id: str, names: tuple[str, ...] = ARRAYS) -> Arrays:
        """The named arrays of a committed track or alias.

        Raises:
            StoreDamagedError: they fail their checksum or cannot be read; names the track.
        """
        found = self.try_arrays(track_id, names)
        if isinstance(found, dict):
            return found
        relpath = self.index.tracks[track_id]["relpath"]
        raise StoreDamagedError(
            f"track {relpath} ({track_id}) of store {self.store} is damaged: {found}; "
            "rerun clmr-embed extract on its library to re-embed it"
        )

    def try_arrays(self, track_id: str, names: tuple[str, ...] = ARRAYS) -> Arrays | str:
        """The arrays, or why they cannot be read (checksum, missing file, bad shape)."""
        source = self.index.source(track_id)
        if source in self.index.damaged:
            return self.index.damaged[source]
        try:
            return self._read(source, names)
        except READ_ERRORS as exc:
            return _describe(exc)

    def means(self, track_ids: list[str]) -> np.ndarray:
        """The track vectors of these tracks or aliases, float32 (len, embedding_dim).

        Each segment's MEANS dataset is read once (and not kept); a segment without one
        (older) or whose MEANS cannot be read gives its tracks' own means one by one (which
        raise StoreDamagedError naming a damaged track).
        """
        out = np.empty((len(track_ids), self.embedding_dim), np.float32)
        wanted: dict[str, list[tuple[int, str]]] = {}  # segment -> (output row, source id)
        for i, tid in enumerate(track_ids):
            source = self.index.source(tid)
            wanted.setdefault(self.index.location.get(source, ""), []).append((i, source))
        for name, picks in wanted.items():
            rows = self._mean_rows(name)
            for i, source in picks:
                if rows is not None and source in rows[0]:
                    out[i] = rows[1][rows[0][source]]
                else:
                    out[i] = self.arrays(source, ("mean",))["mean"]
        return out

    def _mean_rows(self, name: str) -> tuple[dict[str, int], np.ndarray] | None:
        """(id -> row, MEANS) of segment `name`; None where it has none or it is unreadable."""
        segment = self.segments.get(name)
        if segment is None or segment.file is None:
            return None
        with contextlib.suppress(*READ_ERRORS):
            if MEANS in segment.file:
                rows = {tid: i for i, tid in enumerate(mean_rows(segment.catalog))}
                means = np.asarray(segment.file[MEANS][()], np.float32)
                if means.shape == (len(rows), self.embedding_dim):
                    return rows, means
        return None

    def verify(self, track_ids: Iterable[str] | None = None) -> dict[str, str]:
        """Check every array of these tracks (default: all); id -> reason for the damaged ones.

        A segment whose file still has the sha256 recorded at its write is intact as a whole
        (one sequential hash, ~30x cheaper than reading each track); the tracks of any other
        segment are read one by one, so the damage is found and named per track.
        """
        intact = self._intact_segments()
        checked: dict[str, str] = {}  # source id -> reason ("" when intact)
        damaged = {}
        for tid in self.index.tracks if track_ids is None else track_ids:
            source = self.index.source(tid)
            if source not in checked and self.index.location.get(source) in intact:
                checked[source] = ""
            if source not in checked:
                found = self.try_arrays(source)
                checked[source] = "" if isinstance(found, dict) else found
            if checked[source]:
                damaged[tid] = checked[source]
        return damaged

    def close(self) -> None:
        self.drop(list(self.segments))

    def _intact_segments(self) -> set[str]:
        """Names of the open segments whose file matches its recorded sha256."""
        intact = set()
        for name, segment in self.segments.items():
            if segment.file is None or not segment.info.sha256:
                continue
            try:
                if file_sha256(Path(segment.file.filename)) == segment.info.sha256:
                    intact.add(name)
            except OSError:  # unreadable now: the per-track reads say which tracks are lost
                continue
        return intact

    def _read(self, source: str, names: tuple[str, ...]) -> Arrays:
        """Read through h5py's low-level API: a third of the high-level cost per dataset, and
        verify() reads three datasets of every track on each extract run."""
        segment = self.segments[self.index.location[source]]
        if segment.file is None:
            raise OSError(segment.problem)
        n, dim = int(self.index.tracks[source]["n_windows"]), self.embedding_dim
        expected = {"embeddings": (n, dim), "starts_s": (n,), "mean": (dim,)}
        tracks = self._groups.get(segment.info.name)
        if tracks is None:
            tracks = self._groups[segment.info.name] = segment.file["tracks"].id
        arrays = {}
        for name in names:
            dataset = h5py.h5d.open(tracks, f"{source}/{name}".encode())
            if dataset.shape != expected[name] or dataset.dtype != np.float32:
                raise ValueError(f"{name} is {dataset.dtype} {dataset.shape}, not {expected[name]}")
            arrays[name] = np.empty(dataset.shape, np.float32)
            dataset.read(h5py.h5s.ALL, h5py.h5s.ALL, arrays[name])
        return arrays


def _describe(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "filter returned failure" in text:
        return "its data fails its checksum"
    return f"unreadable ({text})"


def open_segments(store: Path, manifest: Manifest, skip_damaged: bool = False) -> SegmentSet:
    """Open every segment of a manifest (a schema-1 file is its own one segment).

    Raises:
        StoreDamagedError: a segment's track list is unreadable (unless `skip_damaged`: the
            writer leaves it out with a warning, and its files are embedded again as new).
    """
    view = SegmentSet(store, manifest.header.embedding_dim)
    try:
        if manifest.schema == LEGACY_SCHEMA:
            view.add(open_legacy(store))
        for info in manifest.segments:
            try:
                view.add(open_segment(segment_folder(store), info))
            except StoreDamagedError as exc:
                if not skip_damaged:
                    raise
                warnings.warn(f"{exc}; leaving it out", stacklevel=3)
                view.skipped.append(info.name)
    except BaseException:
        view.close()
        raise
    return view


# Schema-1 stores (one self-contained HDF5 file): read as a single segment, upgraded on write.
LEGACY_CATALOG = "catalog"  # schema 1: JSON string of every group's attrs and the errors


def _track_attrs(group: h5py.Group) -> dict[str, Any]:
    attrs = {k: v.item() if isinstance(v, np.generic) else v for k, v in group.attrs.items()}
    attrs["flags"] = tuple(json.loads(attrs.get("flags", "[]")))
    return attrs


def read_legacy_index(f: h5py.File) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """(track id -> attrs, relpath -> error) from the catalog, or from the groups if it is stale."""
    if LEGACY_CATALOG in f:
        catalog = json.loads(f[LEGACY_CATALOG].asstr()[()])
        tracks, errors = catalog["tracks"], catalog["errors"]
        if len(tracks) == len(f["tracks"]) and len(errors) == len(f["errors"]):
            return {tid: dict(a, flags=tuple(a["flags"])) for tid, a in tracks.items()}, errors
    tracks = {tid: _track_attrs(g) for tid, g in f["tracks"].items()}
    errors = {str(g.attrs["relpath"]): str(g.attrs["reason"]) for g in f["errors"].values()}
    return tracks, errors


def open_legacy(path: Path) -> Segment:
    """A schema-1 store file, opened read-only, as the one segment of its store.

    Raises:
        StoreDamagedError: its track list cannot be read.
    """
    file = open_h5(path)
    try:
        tracks, errors = read_legacy_index(file)
    except READ_ERRORS as exc:
        file.close()
        raise StoreDamagedError(
            f"store {path} (schema 1) is damaged: its track list cannot be read ({exc})"
        ) from None
    info = SegmentInfo(path.name, 0, len(tracks), path.stat().st_size, "")
    return Segment(info, file, "", SegmentCatalog(tracks=tracks, errors=errors))

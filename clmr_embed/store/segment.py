"""Immutable segment files: the tracks, aliases, removals and errors one commit or merge put."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from clmr_embed.atomic import write_bytes
from clmr_embed.errors import StoreDamagedError
from clmr_embed.store.journal import Arrays, error_key
from clmr_embed.store.layout import (
    ARRAYS,
    READ_ERRORS,
    file_image,
    get_json,
    memory_file,
    put_array,
    put_json,
)

SEGMENT_PREFIX, SEGMENT_SUFFIX, CATALOG_SUFFIX = "seg-", ".h5", ".json"
CATALOG = "catalog"  # the segment's SegmentCatalog as checksummed JSON (also its sidecar file)
# every embedded track's mean in one (n, dim) dataset, rows in `mean_rows` order: one read gives a
# segment's track vectors (reading each track's own mean costs ~125 µs a track). Older segments
# have none; readers then read the tracks' means one by one.
MEANS = "means"
TRACK_ATTR = "track"  # each track group's attrs, as JSON
TRACK_OVERHEAD = 4096  # bytes of HDF5 metadata per track group, for sizing segments
Attrs = dict[str, Any]


def segment_folder(store: Path) -> Path:
    """The folder beside a store that holds its segment files: `<store>.d/`."""
    return store.with_name(store.name + ".d")


def segment_name(serial: int) -> str:
    """The file name of the `serial`-th segment written for a store."""
    return f"{SEGMENT_PREFIX}{serial:08d}{SEGMENT_SUFFIX}"


def catalog_name(segment: str) -> str:
    """The catalog sidecar of a segment: the same name with .json."""
    return segment.removesuffix(SEGMENT_SUFFIX) + CATALOG_SUFFIX


@dataclass(frozen=True)
class SegmentInfo:
    """A segment as the manifest lists it."""

    name: str  # file name in the segment folder
    level: int  # 0: written by a commit; each merge of segments adds 1
    tracks: int  # tracks and aliases it puts
    size: int  # bytes of its .h5 file
    catalog_sha256: str  # of its catalog JSON (the sidecar must match it)
    sha256: str = ""  # of its .h5 file, for the fast per-run check ("" in older stores)

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> SegmentInfo:
        return cls(
            str(value["name"]),
            int(value["level"]),
            int(value["tracks"]),
            int(value["size"]),
            str(value["catalog_sha256"]),
            str(value.get("sha256", "")),
        )


@dataclass
class SegmentCatalog:
    """What a segment changes over the older ones (the latest segment wins per key)."""

    tracks: dict[str, Attrs] = field(default_factory=dict)  # id -> attrs of a track or alias
    removed: list[str] = field(default_factory=list)  # ids removed (pruned)
    errors: dict[str, str] = field(default_factory=dict)  # relpath -> reason of a failed file
    cleared: list[str] = field(default_factory=list)  # relpaths whose error was cleared
    damaged: dict[str, str] = field(default_factory=dict)  # id -> why a merge lost its arrays

    def to_json(self) -> dict[str, Any]:
        tracks = {tid: dict(a, flags=list(a["flags"])) for tid, a in self.tracks.items()}
        return {
            "tracks": tracks,
            "removed": self.removed,
            "errors": self.errors,
            "cleared": self.cleared,
            "damaged": self.damaged,
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> SegmentCatalog:
        return cls(
            {str(tid): dict(a) for tid, a in value["tracks"].items()},
            [str(tid) for tid in value.get("removed", [])],
            {str(k): str(v) for k, v in value["errors"].items()},
            [str(r) for r in value.get("cleared", [])],
            {str(k): str(v) for k, v in value.get("damaged", {}).items()},
        )


def mean_rows(catalog: SegmentCatalog) -> list[str]:
    """The ids of a segment's MEANS rows, in order: its embedded tracks (not aliases, not
    damaged), sorted."""
    return sorted(
        tid for tid, a in catalog.tracks.items() if not a["alias_of"] and tid not in catalog.damaged
    )


def _mirror(attrs: Attrs) -> dict[str, str]:
    """The group attribute for h5py users: the track's attrs as JSON (one attribute costs a
    quarter of eight; readers use the checksummed catalog instead)."""
    return {TRACK_ATTR: json.dumps(dict(attrs, flags=list(attrs["flags"])), sort_keys=True)}


class SegmentBuilder:
    """Collects one segment in memory; `write` puts the file and its catalog sidecar on disk."""

    def __init__(self) -> None:
        self._file = memory_file()
        self._file.create_group("tracks")
        self._file.create_group("errors")
        self.catalog = SegmentCatalog()
        self.nbytes = 0  # estimated size of the file so far
        self._means: dict[str, Any] = {}  # embedded id -> its mean (the MEANS rows)

    @property
    def empty(self) -> bool:
        c = self.catalog
        return not (c.tracks or c.removed or c.errors or c.cleared)

    def put_track(self, track_id: str, attrs: Attrs, arrays: Arrays) -> None:
        """An embedded track: attrs and its embeddings, starts_s and mean arrays."""
        group = self._file["tracks"].create_group(track_id)
        group.attrs.update(_mirror(attrs))
        for name in ARRAYS:
            put_array(group, name, arrays[name])
            self.nbytes += arrays[name].nbytes
        self._means[track_id] = arrays["mean"]
        self._put(track_id, attrs)

    def put_alias(self, track_id: str, attrs: Attrs) -> None:
        """An alias (attrs only: its arrays are those of the track it names)."""
        self._file["tracks"].create_group(track_id).attrs.update(_mirror(attrs))
        self._put(track_id, attrs)

    def put_damaged(self, track_id: str, attrs: Attrs, reason: str) -> None:
        """A track whose arrays were lost: readers raise for it until it is re-embedded."""
        self._put(track_id, attrs)
        self.catalog.damaged[track_id] = reason

    def remove(self, track_id: str) -> None:
        self.catalog.removed.append(track_id)

    def set_error(self, relpath: str, reason: str) -> None:
        self._file["errors"].create_group(error_key(relpath)).attrs.update(
            {"relpath": relpath, "reason": reason}
        )
        self.catalog.errors[relpath] = reason
        self.nbytes += TRACK_OVERHEAD

    def clear_error(self, relpath: str) -> None:
        self.catalog.cleared.append(relpath)

    def write(self, folder: Path, name: str, level: int) -> SegmentInfo:
        """Write `folder/name` and its catalog durably (atomic renames); close the builder."""
        rows = mean_rows(self.catalog)
        if rows:
            put_array(self._file, MEANS, np.stack([self._means[tid] for tid in rows]))
        data = put_json(self._file, CATALOG, self.catalog.to_json())
        image = file_image(self._file)
        write_bytes(folder / name, image)
        write_bytes(folder / catalog_name(name), data)
        catalog_sha = hashlib.sha256(data).hexdigest()
        sha = hashlib.sha256(image).hexdigest()
        return SegmentInfo(name, level, len(self.catalog.tracks), len(image), catalog_sha, sha)

    def discard(self) -> None:
        self._file.close()

    def _put(self, track_id: str, attrs: Attrs) -> None:
        self.catalog.tracks[track_id] = dict(attrs, flags=list(attrs["flags"]))
        self.nbytes += TRACK_OVERHEAD


@dataclass
class Segment:
    """An open segment: its file (None when it cannot be opened) and its catalog."""

    info: SegmentInfo
    file: h5py.File | None
    problem: str  # why `file` is None ("" when it is open)
    catalog: SegmentCatalog
    missing: bool = False  # the file is gone (a reader raced a merge, or it was deleted)


def open_segment(folder: Path, info: SegmentInfo) -> Segment:
    """Open a segment read-only; a damaged file still lists its tracks (from the sidecar).

    Raises:
        StoreDamagedError: neither the sidecar nor the file yields its catalog.
    """
    path = folder / info.name
    file, problem = None, ""
    try:
        file = h5py.File(path, "r")
    except (OSError, RuntimeError) as exc:
        problem = f"its segment file {path} cannot be opened ({str(exc).splitlines()[0]})"
    missing = file is None and not path.exists()
    if missing:
        problem = f"its segment file {path} is missing"
    try:
        return Segment(info, file, problem, _read_catalog(folder, info, file), missing)
    except BaseException:
        if file is not None:
            file.close()
        raise


def _read_catalog(folder: Path, info: SegmentInfo, file: h5py.File | None) -> SegmentCatalog:
    sidecar = folder / catalog_name(info.name)
    problems = []
    try:
        data = sidecar.read_bytes()
        if hashlib.sha256(data).hexdigest() == info.catalog_sha256:
            return SegmentCatalog.from_json(json.loads(data))
        problems.append(f"{sidecar.name} fails its checksum")
    except READ_ERRORS as exc:
        problems.append(f"{sidecar.name}: {type(exc).__name__}")
    if file is not None:
        try:
            return SegmentCatalog.from_json(get_json(file, CATALOG))
        except READ_ERRORS as exc:
            problems.append(f"its catalog dataset: {type(exc).__name__}")
    raise StoreDamagedError(
        f"segment {folder / info.name} is damaged beyond listing its tracks "
        f"({'; '.join(problems)}); rerun clmr-embed extract to re-embed them"
    )

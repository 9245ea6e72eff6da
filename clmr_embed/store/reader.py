"""Read-only views of committed stores (no lock: they work while a writer runs)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import numpy.typing as npt

from clmr_embed.errors import StoreError
from clmr_embed.store.journal import ERROR_SUFFIX, Journal
from clmr_embed.store.manifest import Manifest, read_manifest
from clmr_embed.store.segment import SegmentInfo
from clmr_embed.store.view import SegmentSet, open_segments

OPEN_TRIES = 5  # a merge may delete segments between reading the manifest and opening them


class EmbeddingStore:
    """Read-only view of a store's committed tracks, addressed by track id or relative path.

    A snapshot: it holds the segment files it opened, and commits or merges never change
    those. Aliases resolve to the track whose embeddings they share. A track whose data fails
    its checksum raises StoreDamagedError naming it; the others read as usual.
    """

    def __init__(self, path: Path, manifest: Manifest, segments: SegmentSet) -> None:
        self.path = path
        self.header = manifest.header
        self.schema_version = manifest.schema
        self.generation = manifest.generation  # +1 per commit: "has the store changed?"
        self.created = manifest.created  # when the store was first written (UTC, ISO 8601)
        self.shards = manifest.shards  # provenance of stores merged into this one
        self.roots = manifest.roots  # the library folders extract found the files under
        self.segments: tuple[SegmentInfo, ...] = manifest.segments
        self._segments = segments
        self._attrs = segments.index.tracks
        self._errors = segments.index.errors
        self._by_path = {a["relpath"]: tid for tid, a in self._attrs.items()}
        self._order = sorted(self._attrs, key=lambda tid: self._attrs[tid]["relpath"])

    def __enter__(self) -> EmbeddingStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        return len(self._attrs)

    def __contains__(self, key: object) -> bool:
        key = key.as_posix() if isinstance(key, PurePath) else key
        return key in self._attrs or key in self._by_path

    @property
    def track_ids(self) -> list[str]:
        """Ids of all tracks and aliases, ordered by relative path (like `paths`)."""
        return list(self._order)

    @property
    def paths(self) -> list[str]:
        """Relative POSIX paths of all tracks and aliases, sorted."""
        return [self._attrs[tid]["relpath"] for tid in self._order]

    @property
    def errors(self) -> dict[str, str]:
        """Files that failed in the last run that saw them: relpath -> reason."""
        return dict(self._errors)

    def embeddings(self, key: str | PurePath) -> npt.NDArray[np.float32]:
        """Window embeddings, float32 (n_windows, embedding_dim)."""
        return self._data(key, "embeddings")

    def starts_s(self, key: str | PurePath) -> npt.NDArray[np.float32]:
        """Window start times in seconds, float32 (n_windows,)."""
        return self._data(key, "starts_s")

    def mean(self, key: str | PurePath) -> npt.NDArray[np.float32]:
        """The track vector (mean of its windows), float32 (embedding_dim,)."""
        return self._data(key, "mean")

    def means(self) -> tuple[list[str], npt.NDArray[np.float32]]:
        """All track vectors: (relpaths as in `paths`, float32 (n_tracks, embedding_dim))."""
        if not self._order:
            return [], np.zeros((0, self.header.embedding_dim), np.float32)
        return self.paths, self._segments.means(self._order)

    def flags(self, key: str | PurePath) -> tuple[str, ...]:
        """Flags such as ("short", "silent")."""
        return tuple(self._attrs[self._id(key)]["flags"])

    def attrs(self, key: str | PurePath) -> dict[str, Any]:
        """The track's (or alias's) attributes: relpath, content_sha256, duration_s, ..."""
        return dict(self._attrs[self._id(key)])

    def verify(self) -> dict[str, str]:
        """Read every track's arrays; track id -> reason for those that are damaged."""
        return self._segments.verify()

    def close(self) -> None:
        """Close the files (idempotent)."""
        self._segments.close()

    def _id(self, key: str | PurePath) -> str:
        key = key.as_posix() if isinstance(key, PurePath) else key
        if key in self._attrs:
            return key
        if key in self._by_path:
            return self._by_path[key]
        raise StoreError(f"{key!r} is neither a track id nor a relative path in store {self.path}")

    def _data(self, key: str | PurePath, name: str) -> npt.NDArray[np.float32]:
        return self._segments.arrays(self._id(key), (name,))[name]


def _open_snapshot(path: Path) -> tuple[Manifest, SegmentSet]:
    """The manifest and its segments, opened together (again when a merge raced us)."""
    for _ in range(OPEN_TRIES - 1):
        manifest = read_manifest(path)
        segments = open_segments(path, manifest)
        missing = any(s.missing for s in segments.segments.values())
        if not missing or read_manifest(path).segments == manifest.segments:
            return manifest, segments  # a file still missing with nothing merged is damage
        segments.close()
    manifest = read_manifest(path)
    return manifest, open_segments(path, manifest)


def open_store(path: Path) -> EmbeddingStore:
    """Open a store read-only (no lock: works while a writer is running).

    Warns when journaled tracks are not merged yet (a writer is running or was killed).
    Schema-1 stores read as before (a writer upgrades them).

    Raises:
        StoreError: the file is missing, not HDF5, or not a clmr-embed store.
        StoreDamagedError: its manifest, or a segment's track list, is damaged.
    """
    path = Path(path)
    real = Path(os.path.realpath(path))
    manifest, segments = _open_snapshot(real)
    store = EmbeddingStore(path, manifest, segments)
    journal = Journal(real.with_name(real.name + ".journal"))
    waiting = [name for name in journal.names() if not name.endswith(ERROR_SUFFIX)]
    if waiting:
        warnings.warn(
            f"{len(waiting)} tracks of store {path} are journaled but not merged yet; "
            "rerun clmr-embed extract on it to merge them",
            stacklevel=2,
        )
    return store

"""A store's vector spaces: track means or windows, centred and L2-normalised, with row labels."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from clmr_embed.errors import ConfigError

Matrix = npt.NDArray[np.float32]
LEVELS = ("tracks", "windows")  # one row per track (its mean) or per window


class HeaderView(Protocol):
    """What search reads of a store header (clmr_embed.store.StoreHeader)."""

    @property
    def model_name(self) -> str: ...
    @property
    def model_sha256(self) -> str: ...
    @property
    def sample_rate(self) -> int: ...
    @property
    def window_samples(self) -> int: ...
    @property
    def hop_samples(self) -> int: ...
    @property
    def embedding_dim(self) -> int: ...
    @property
    def engine(self) -> str: ...
    @property
    def precision(self) -> str: ...
    def fingerprint(self) -> str: ...


class StoreView(Protocol):
    """What search reads of a store (clmr_embed.store.EmbeddingStore).

    A protocol, so that the store can offer `store.similar(...)` without an import cycle.
    """

    @property
    def path(self) -> Path: ...
    @property
    def header(self) -> HeaderView: ...
    @property
    def generation(self) -> int: ...  # +1 per commit that changed content (schema 1: 0)
    @property
    def track_ids(self) -> list[str]: ...
    @property
    def paths(self) -> list[str]: ...
    def __contains__(self, key: object) -> bool: ...
    def attrs(self, key: str) -> dict[str, Any]: ...
    def embeddings(self, key: str) -> Matrix: ...
    def starts_s(self, key: str) -> Matrix: ...
    def mean(self, key: str) -> Matrix: ...


@dataclass(frozen=True)
class Labels:
    """What each row of a space is, and the centre its vectors were shifted by."""

    level: str  # "tracks" or "windows"
    centre: Matrix  # (dim,) the mean row, subtracted before normalising
    track_ids: tuple[str, ...]  # the store's embedded tracks (no aliases), in path order
    relpaths: tuple[str, ...]  # their relative paths
    rows: npt.NDArray[np.int32]  # (n,) index into track_ids of each row
    starts_s: Matrix  # (n,) window start in seconds (0 for track rows)


@dataclass(frozen=True)
class Space:
    """Rows ready for cosine search (inner products of unit vectors)."""

    labels: Labels
    vectors: Matrix  # (n, dim) float32, centred and L2-normalised


def normalise(raw: Matrix, centre: Matrix) -> Matrix:
    """Rows minus `centre`, scaled to unit length (a row equal to the centre stays zero).

    CLMR embeddings are ReLU outputs: every coordinate is >= 0, so all vectors share one large
    common direction and raw cosines crowd near 1. Subtracting the library's mean removes it and
    spreads the similarities out.
    """
    shifted = np.atleast_2d(raw).astype(np.float32) - centre
    norms = np.linalg.norm(shifted, axis=1, keepdims=True)
    unit: npt.NDArray[np.float32] = (shifted / np.maximum(norms, 1e-12)).astype(np.float32)
    return unit


def embedded_tracks(store: StoreView) -> list[str]:
    """Ids of the tracks with embeddings of their own (aliases repeat another track's)."""
    return [tid for tid in store.track_ids if not store.attrs(tid)["alias_of"]]


def canonical_id(store: StoreView, key: str) -> str:
    """The embedded track a key (id or relpath, maybe an alias) shares its embeddings with."""
    alias_of = str(store.attrs(key)["alias_of"])
    return alias_of or dict(zip(store.paths, store.track_ids, strict=True)).get(key, key)


def row_count(store: StoreView, level: str) -> int:
    """Rows of a space, from the track attributes alone (no arrays read)."""
    ids = embedded_tracks(store)
    if level == "tracks":
        return len(ids)
    return sum(int(store.attrs(tid)["n_windows"]) for tid in ids)


def raw_rows(store: StoreView, level: str) -> tuple[Matrix, Labels]:
    """The uncentred rows of a space (labels carry a zero centre)."""
    if level not in LEVELS:
        raise ConfigError(f"level must be one of {list(LEVELS)}, got {level!r}")
    ids = embedded_tracks(store)
    dim = store.header.embedding_dim
    if level == "tracks":
        raw = np.stack([store.mean(t) for t in ids]) if ids else np.zeros((0, dim), np.float32)
        rows = np.arange(len(ids), dtype=np.int32)
        starts = np.zeros(len(ids), np.float32)
    else:
        blocks = [store.embeddings(t) for t in ids]
        raw = np.concatenate(blocks) if blocks else np.zeros((0, dim), np.float32)
        rows = np.repeat(np.arange(len(ids), dtype=np.int32), [len(b) for b in blocks])
        starts = np.concatenate([store.starts_s(t) for t in ids] or [np.zeros(0, np.float32)])
    relpaths = tuple(str(store.attrs(t)["relpath"]) for t in ids)
    zero = np.zeros(dim, np.float32)
    labels = Labels(level, zero, tuple(ids), relpaths, rows, starts.astype(np.float32))
    return raw.astype(np.float32), labels


def load_space(store: StoreView, level: str) -> Space:
    """All rows of a level, centred on their mean and L2-normalised."""
    raw, labels = raw_rows(store, level)
    centre = raw.mean(axis=0, dtype=np.float64).astype(np.float32) if len(raw) else labels.centre
    labels = Labels(level, centre, labels.track_ids, labels.relpaths, labels.rows, labels.starts_s)
    return Space(labels, normalise(raw, centre))

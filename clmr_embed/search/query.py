"""Nearest tracks or windows of a store to a stored track or a new audio file."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from clmr_embed.errors import ConfigError, StoreError
from clmr_embed.search.embedding import StoreEmbedder
from clmr_embed.search.exact import top_k_rows
from clmr_embed.search.index import AnnIndex, index_files, usearch_available
from clmr_embed.search.sidecar import sidecar_dir, store_fingerprint
from clmr_embed.search.vectors import (
    LEVELS,
    Labels,
    Matrix,
    StoreView,
    canonical_id,
    load_space,
    normalise,
    row_count,
)


@dataclass(frozen=True)
class SearchConfig:
    """How a store is searched."""

    # rows above which the approximate index replaces exact search. bench/similar.py on 2
    # loaded cores: exact numpy costs ~2 ms a query at 10k rows and ~0.15 s at 100k, while an
    # index of 100k rows takes ~3 min to build (once, cached) and ~0.5 ms a query. 0 forces it.
    index_threshold: int = 100_000
    cache: bool = True  # keep a built index in <store>.cache/ (rebuilt when the store changes)
    threads: int = 0  # index build threads; 0: all cores
    on_build: Callable[[str, int], None] | None = None  # told (level, rows) before a build


@dataclass(frozen=True)
class Neighbour:
    """One result: a track, or one window of a track."""

    track_id: str  # the store's id of the track
    relpath: str  # its path relative to the library root
    score: float  # cosine of the centred, L2-normalised vectors, in [-1, 1]
    start_s: float | None = None  # window start in seconds (window results only)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (start_s only for windows)."""
        record: dict[str, Any] = {"track_id": self.track_id, "relpath": self.relpath}
        record["score"] = round(self.score, 6)
        if self.start_s is not None:
            record["start_s"] = round(self.start_s, 3)
        return record


class Searcher:
    """Cosine search over one level of a store: exact numpy, or the cached usearch index.

    Args:
        store: an open store (clmr_embed.store.EmbeddingStore).
        level: "tracks" (one row per track mean) or "windows".
        config: threshold, caching and build notifications.
    """

    def __init__(
        self, store: StoreView, level: str = "tracks", config: SearchConfig | None = None
    ) -> None:
        if level not in LEVELS:
            raise ConfigError(f"level must be one of {list(LEVELS)}, got {level!r}")
        self.config = config or SearchConfig()
        self.level = level
        self._vectors: Matrix | None = None
        self._index: AnnIndex | None = None
        rows = row_count(store, level)
        if rows > self.config.index_threshold and usearch_available():
            self._index = self._open_index(store, rows)
            self.labels: Labels = self._index.labels
        else:
            if rows > self.config.index_threshold:
                warnings.warn(
                    f"{rows} {level} rows: searching exactly; pip install 'clmr-embed[index]' "
                    "for an approximate index",
                    stacklevel=2,
                )
            space = load_space(store, level)
            self._vectors, self.labels = space.vectors, space.labels

    @property
    def backend(self) -> str:
        """The search in use: "exact" or "usearch"."""
        return "exact" if self._index is None else "usearch"

    def _open_index(self, store: StoreView, rows: int) -> AnnIndex:
        files = index_files(sidecar_dir(store.path), self.level)
        fingerprint = store_fingerprint(store)
        cached = AnnIndex.load(files, fingerprint) if self.config.cache else None
        if cached is not None:
            return cached
        if self.config.on_build is not None:
            self.config.on_build(self.level, rows)
        index = AnnIndex.build(load_space(store, self.level), self.config.threads)
        if self.config.cache:
            index.save(files, fingerprint)
        return index

    def nearest(
        self, vector: Matrix, top_k: int = 10, exclude: str | None = None
    ) -> list[Neighbour]:
        """The `top_k` rows nearest a raw (uncentred) embedding, best first.

        Args:
            vector: (dim,) float32 as stored (a track mean or a window).
            top_k: how many results.
            exclude: a track id whose rows are left out (the query's own track).
        """
        unit = normalise(vector, self.labels.centre)[0]
        skip = self._excluded_rows(exclude)
        rows, scores = self._candidates(unit, top_k + len(skip))
        keep = ~np.isin(rows, skip)
        pairs = zip(rows[keep][:top_k], scores[keep][:top_k], strict=True)
        return [self._neighbour(int(row), float(score)) for row, score in pairs]

    def _candidates(
        self, unit: Matrix, count: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        if self._index is not None:
            return self._index.search(unit, count)
        assert self._vectors is not None  # exact search keeps the rows
        return top_k_rows(self._vectors, unit, count)

    def _excluded_rows(self, track_id: str | None) -> npt.NDArray[np.int64]:
        if track_id is None or track_id not in self.labels.track_ids:
            return np.zeros(0, np.int64)
        position = self.labels.track_ids.index(track_id)
        return np.flatnonzero(self.labels.rows == position).astype(np.int64)

    def _neighbour(self, row: int, score: float) -> Neighbour:
        track = int(self.labels.rows[row])
        start = float(self.labels.starts_s[row]) if self.level == "windows" else None
        return Neighbour(self.labels.track_ids[track], self.labels.relpaths[track], score, start)


@dataclass(frozen=True)
class SimilarResult:
    """What `similar` found."""

    query: str  # the query as given
    source: str  # "store" (a stored track) or "file" (new audio, embedded with the store's model)
    level: str  # "tracks" or "windows"
    backend: str  # "exact" or "usearch"
    neighbours: list[Neighbour]  # best first

    def to_dict(self) -> dict[str, Any]:
        """The JSON object `clmr-embed similar --json` prints."""
        return {
            "query": self.query,
            "source": self.source,
            "level": self.level,
            "backend": self.backend,
            "neighbours": [n.to_dict() for n in self.neighbours],
        }


def query_vector(
    store: StoreView, query: str | Path, model: str | Path | None = None
) -> tuple[Matrix, str | None, str]:
    """(raw track vector, the stored track to exclude or None, "store" or "file") of a query.

    A track id or relative path in the store is used as stored; otherwise an audio file is
    embedded with the store's model (refused if `model` is another one).

    Raises:
        StoreError: the query is neither in the store nor an existing file.
    """
    key = query.as_posix() if isinstance(query, Path) else str(query)
    if key in store:
        return store.mean(key), canonical_id(store, key), "store"
    path = Path(query).expanduser()
    if not path.is_file():
        raise StoreError(
            f"{key!r} is neither a track id or relative path in store {store.path} nor an "
            "audio file; give a stored track or a file to embed"
        )
    return StoreEmbedder(store, model).embed_file(path).mean, None, "file"


def similar(
    store: StoreView | str | Path,
    query: str | Path,
    top_k: int = 10,
    windows: bool = False,
    model: str | Path | None = None,
    config: SearchConfig | None = None,
) -> SimilarResult:
    """The tracks (or windows, with start times) of `store` nearest to `query`.

    The one search behind `clmr-embed similar` and the web app's neighbours. Similarity is the
    cosine of centred, L2-normalised embeddings (see `normalise`); a stored query's own track
    is left out of the results.

    Args:
        store: an open store, or the path of one (opened and closed here).
        query: a track id or relative path in the store, or an audio file to embed.
        top_k: how many results.
        windows: search single windows (start times included) instead of track means.
        model: the store's model (name or ONNX path) for a new file; None: the recorded name.
        config: exact/index threshold and caching.
    """
    if top_k < 1:
        raise ConfigError(f"top_k must be at least 1, got {top_k}")
    if isinstance(store, str | Path):
        from clmr_embed.store import open_store

        with open_store(Path(store)) as opened:
            return similar(opened, query, top_k, windows, model, config)
    vector, exclude, source = query_vector(store, query, model)
    searcher = Searcher(store, "windows" if windows else "tracks", config)
    found = searcher.nearest(vector, top_k, exclude)
    return SimilarResult(str(query), source, searcher.level, searcher.backend, found)

"""The approximate index (usearch HNSW) of a space, built once and cached beside the store."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from clmr_embed.atomic import atomic_path
from clmr_embed.errors import MissingDependencyError
from clmr_embed.search.sidecar import read_arrays, write_arrays
from clmr_embed.search.vectors import Labels, Matrix, Space

# HNSW settings, measured in bench/similar.py on real CLMR windows (recall@10 0.9985 at 100k).
CONNECTIVITY = 16  # graph degree M
EXPANSION_ADD = 128  # candidate list while building (efConstruction)
EXPANSION_SEARCH = 64  # candidate list while searching (ef)
DTYPE = "f16"  # vectors kept as float16 inside the index: half the memory, same recall
PARAMS = f"usearch:{DTYPE}:M{CONNECTIVITY}:efc{EXPANSION_ADD}"  # part of the cache key


def import_usearch() -> Any:
    """usearch's Index class, or an error naming the extra that installs it."""
    try:
        from usearch.index import Index
    except ImportError:
        raise MissingDependencyError(
            "usearch is not installed; pip install 'clmr-embed[index]' for fast search of "
            "large stores"
        ) from None
    return Index


def usearch_available() -> bool:
    """True when the index library can be imported."""
    try:
        import_usearch()
    except MissingDependencyError:
        return False
    return True


@dataclass(frozen=True)
class IndexFiles:
    """The two cache files of one level's index."""

    index: Path  # the usearch graph
    labels: Path  # row labels, centre and the store fingerprint (npz)


def index_files(folder: Path, level: str) -> IndexFiles:
    """Where a level's index lives inside the store's sidecar folder."""
    return IndexFiles(folder / f"{level}.usearch", folder / f"{level}.npz")


class AnnIndex:
    """Nearest rows of a space through an HNSW graph (cosine on centred unit vectors)."""

    def __init__(self, index: Any, labels: Labels) -> None:
        self._index = index
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels.rows)

    @classmethod
    def build(cls, space: Space, threads: int = 0) -> AnnIndex:
        """Index every row of `space` (threads 0: all cores)."""
        index = import_usearch()(
            ndim=space.vectors.shape[1],
            metric="ip",
            dtype=DTYPE,
            connectivity=CONNECTIVITY,
            expansion_add=EXPANSION_ADD,
            expansion_search=EXPANSION_SEARCH,
        )
        if len(space.vectors):
            index.add(np.arange(len(space.vectors)), space.vectors, threads=threads)
        return cls(index, space.labels)

    def save(self, files: IndexFiles, fingerprint: str) -> bool:
        """Write the graph, then the labels that validate it (False if not writable)."""
        try:
            with atomic_path(files.index) as tmp:
                self._index.save(str(tmp))
        except OSError:
            return False
        return write_arrays(files.labels, f"{fingerprint}:{PARAMS}", _label_arrays(self.labels))

    @classmethod
    def load(cls, files: IndexFiles, fingerprint: str) -> AnnIndex | None:
        """The cached index if it was built for this store content and settings, else None."""
        arrays = read_arrays(files.labels, f"{fingerprint}:{PARAMS}")
        if arrays is None or not files.index.is_file():
            return None
        index = import_usearch().restore(str(files.index), view=True)
        labels = _labels_from(arrays)
        if index is None or len(index) != len(labels.rows):
            return None
        return cls(index, labels)

    def search(
        self, query: Matrix, count: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """Approximate best `count` rows for a (dim,) unit query: (rows, scores), best first."""
        count = min(count, len(self))
        if count <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        matches = self._index.search(query.astype(np.float32), count)
        rows = np.asarray(matches.keys, np.int64)
        return rows, (1.0 - np.asarray(matches.distances, np.float32)).astype(np.float32)


def _label_arrays(labels: Labels) -> dict[str, npt.NDArray[np.generic]]:
    return {
        "level": np.array(labels.level),
        "centre": labels.centre,
        "track_ids": np.array(labels.track_ids, dtype=str),
        "relpaths": np.array(labels.relpaths, dtype=str),
        "rows": labels.rows,
        "starts_s": labels.starts_s,
    }


def _labels_from(arrays: dict[str, npt.NDArray[Any]]) -> Labels:
    return Labels(
        level=str(arrays["level"]),
        centre=arrays["centre"].astype(np.float32),
        track_ids=tuple(str(x) for x in arrays["track_ids"]),
        relpaths=tuple(str(x) for x in arrays["relpaths"]),
        rows=arrays["rows"].astype(np.int32),
        starts_s=arrays["starts_s"].astype(np.float32),
    )

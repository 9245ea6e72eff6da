"""The 2-D map of a store's tracks: PCA (or UMAP when installed), cached with the store's hash."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clmr_embed.errors import ConfigError, MissingDependencyError
from clmr_embed.search.sidecar import read_arrays, write_arrays
from clmr_embed.search.vectors import Matrix

METHODS = ("auto", "pca", "umap")
UMAP_MIN_TRACKS = 20  # below this UMAP's neighbour graph is too small to mean anything


@dataclass(frozen=True)
class TrackMap:
    """Map positions of the tracks, in [-1, 1] on both axes, and how they were made."""

    method: str  # "pca" or "umap"
    xy: Matrix  # (n_tracks, 2)
    # PCA only: centre (dim,) and axes (2, dim) that place a new vector exactly; UMAP maps a
    # new vector to the mean position of its nearest tracks instead (see `place`)
    centre: Matrix
    axes: Matrix
    scale: Matrix  # (2,) divides the projected coordinates into [-1, 1]

    def place(self, unit: Matrix, vectors: Matrix, k: int = 5) -> Matrix:
        """Map position (2,) of a new centred, unit vector given the tracks' unit vectors."""
        if self.method == "pca":
            return ((unit - self.centre) @ self.axes.T / self.scale).astype(np.float32)
        nearest = np.argsort(-(vectors @ unit))[:k]
        centre: Matrix = self.xy[nearest].mean(axis=0).astype(np.float32)
        return centre


def umap_installed() -> bool:
    """True when umap-learn is installed (found, not imported: its import takes seconds)."""
    spec = importlib.util.find_spec("umap")
    return spec is not None and spec.origin is not None  # a leftover empty folder is no umap


def choose_method(method: str, n_tracks: int) -> str:
    """ "pca" or "umap" for a requested method ("auto": UMAP if installed and enough tracks)."""
    if method not in METHODS:
        raise ConfigError(f"map projection must be one of {list(METHODS)}, got {method!r}")
    if method == "umap" and not umap_installed():
        raise MissingDependencyError("the UMAP map needs umap-learn: pip install umap-learn")
    if method == "auto":
        return "umap" if n_tracks >= UMAP_MIN_TRACKS and umap_installed() else "pca"
    return method


def _pca(vectors: Matrix) -> tuple[Matrix, Matrix, Matrix]:
    centre = vectors.mean(axis=0) if len(vectors) else np.zeros(vectors.shape[1], np.float32)
    axes = np.zeros((2, vectors.shape[1]), np.float32)
    if len(vectors) > 1:
        _, _, vt = np.linalg.svd(vectors - centre, full_matrices=False)
        axes[: min(2, len(vt))] = vt[:2]
    return (vectors - centre) @ axes.T, centre.astype(np.float32), axes


def _umap(vectors: Matrix) -> Matrix:
    import umap

    reducer = umap.UMAP(n_components=2, metric="cosine", random_state=0, n_jobs=1)
    return np.asarray(reducer.fit_transform(vectors), np.float32)


def compute_map(vectors: Matrix, method: str) -> TrackMap:
    """Project unit track vectors (n, dim) to 2-D and scale them into [-1, 1]."""
    dim = vectors.shape[1]
    centre, axes = np.zeros(dim, np.float32), np.zeros((2, dim), np.float32)
    if method == "umap":
        xy = _umap(vectors)
        xy = xy - (xy.max(axis=0) + xy.min(axis=0)) / 2
    else:
        xy, centre, axes = _pca(vectors)
    scale = np.maximum(np.abs(xy).max(axis=0), 1e-9) if len(xy) else np.ones(2)
    return TrackMap(method, (xy / scale).astype(np.float32), centre, axes, scale.astype(np.float32))


def load_map(path: Path, fingerprint: str, vectors: Matrix, method: str) -> TrackMap:
    """The cached map of this store content and method, else a new one (cached at `path`)."""
    key = f"{fingerprint}:{method}"
    saved = read_arrays(path, key)
    if saved is not None and len(saved["xy"]) == len(vectors):
        fields = {k: saved[k].astype(np.float32) for k in ("xy", "centre", "axes", "scale")}
        return TrackMap(method, **fields)
    computed = compute_map(vectors, method)
    write_arrays(path, key, {k: getattr(computed, k) for k in ("xy", "centre", "axes", "scale")})
    return computed

"""Options of `clmr-embed serve`: the store, the library roots, the model, limits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class ServeConfig:
    """What the web app serves and how."""

    store: Path  # the HDF5 store to explore
    # folders holding the store's relpaths, instead of the roots it recorded at extract (the
    # default; schema-1 stores record none): audio is served only from files under them, with
    # the recorded content sha256
    roots: tuple[Path, ...] = ()
    model: str | Path | None = None  # the store's model (name or ONNX file); None: its name
    host: str = LOOPBACK  # interface to bind; other Host headers than this and loopback: 403
    port: int = 8000  # TCP port
    max_upload_bytes: int = 64 * 2**20  # uploads above this get 413 before they are embedded
    projection: str = "auto"  # the map: "pca", "umap" (umap-learn), or "auto" (UMAP if installed)
    top_k: int = 10  # neighbours and tags shown for a track

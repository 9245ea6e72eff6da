"""Schema-1 stores (one self-contained HDF5 file): read as a single segment, upgraded on write."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from clmr_embed.errors import StoreDamagedError
from clmr_embed.store.layout import READ_ERRORS, open_h5
from clmr_embed.store.segment import Segment, SegmentCatalog, SegmentInfo

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

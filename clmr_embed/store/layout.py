"""The HDF5 layout of a store: header, track records, catalog and the h5py file helpers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import numpy.typing as npt

from clmr_embed import __version__
from clmr_embed.errors import StoreError

SCHEMA_VERSION = 1
INT_FIELDS = ("sample_rate", "window_samples", "hop_samples", "embedding_dim")
# JSON copy of every group's attrs and the errors, rewritten by each commit: opening a store
# reads it once instead of ~8 attributes per track (0.3 ms each track). Checked by counts.
CATALOG = "catalog"


@dataclass(frozen=True)
class StoreHeader:
    """What every track in a store has in common; a store of another model is refused."""

    model_name: str  # e.g. "clmr-untrained" or the run name
    model_sha256: str  # sha256 of the ONNX file that made the embeddings
    model_trained: bool  # False for random-init placeholder weights
    sample_rate: int  # Hz the model expects
    window_samples: int  # samples per window
    hop_samples: int  # samples between window starts
    embedding_dim: int  # width of each embedding
    preprocessing: dict[str, str] = field(hash=False)  # decoder, resampler, downmix (+ versions)

    def fingerprint(self, schema: int = SCHEMA_VERSION) -> str:
        """The values that must match for embeddings to be comparable."""
        return (
            f"{schema}:{self.model_sha256}:{self.sample_rate}:{self.window_samples}:"
            f"{self.hop_samples}:{self.embedding_dim}"
        )

    def describe(self, other: StoreHeader | None = None) -> str:
        """'model X (sha256 abc…, hop H, dim D)', plus rate/window when they differ from other."""
        parts = [f"sha256 {self.model_sha256[:16]}…", f"hop {self.hop_samples}"]
        parts.append(f"dim {self.embedding_dim}")
        for name in ("sample_rate", "window_samples"):
            if other is not None and getattr(other, name) != getattr(self, name):
                parts.append(f"{name} {getattr(self, name)}")
        return f"model {self.model_name} ({', '.join(parts)})"


@dataclass(frozen=True)
class TrackRecord:
    """One embedded track as the pipeline hands it to the store."""

    track_id: str  # stable id, [A-Za-z0-9_-]; the pipeline hashes the POSIX relpath
    relpath: str  # POSIX path relative to the library root
    content_sha256: str  # sha256 of the file's bytes (finds duplicates and changed files)
    duration_s: float  # decoded duration in seconds
    source_rate: int  # sample rate of the file before resampling
    channels: int  # channels of the file before downmixing
    embeddings: npt.NDArray[np.float32]  # (n_windows, embedding_dim)
    starts_s: npt.NDArray[np.float32]  # (n_windows,) window start times in seconds
    flags: tuple[str, ...] = ()  # e.g. ("short", "silent")


def timestamp() -> str:
    """Now, UTC, ISO 8601 to the second (the header's created/updated)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def open_h5(path: Path, mode: str) -> h5py.File:
    """Open a store file, turning a missing or non-HDF5 file into a StoreError."""
    if mode == "r" and not path.is_file():
        raise StoreError(f"store {path} does not exist; create it with clmr-embed extract")
    try:
        return h5py.File(path, mode)
    except OSError as exc:
        raise StoreError(f"store {path} is not a readable HDF5 file ({exc})") from None


def read_header(f: h5py.File, path: Path) -> tuple[int, StoreHeader]:
    """(schema version, header) of an open store; StoreError if it is not a readable store."""
    attrs = f.attrs
    if "schema_version" not in attrs or "tracks" not in f:
        raise StoreError(f"{path} is an HDF5 file but not a clmr-embed store; use another file")
    schema = int(attrs["schema_version"])
    if schema > SCHEMA_VERSION:
        raise StoreError(
            f"store {path} has schema {schema}, newer than this clmr-embed's {SCHEMA_VERSION}; "
            "upgrade clmr-embed"
        )
    try:
        header = StoreHeader(
            model_name=str(attrs["model_name"]),
            model_sha256=str(attrs["model_sha256"]),
            model_trained=bool(attrs["model_trained"]),
            preprocessing=json.loads(str(attrs["preprocessing"])),
            **{name: int(attrs[name]) for name in INT_FIELDS},
        )
    except (KeyError, ValueError) as exc:
        raise StoreError(
            f"store {path} has a damaged header ({exc}); start it over with the force option"
        ) from None
    return schema, header


def create_empty(path: Path, header: StoreHeader) -> None:
    """Write a store with this header and no tracks or errors at `path`."""
    # fs_persist keeps free-space info across sessions, so replaced tracks' space is reused
    with h5py.File(path, "w", fs_strategy="fsm", fs_persist=True) as f:
        f.attrs["schema_version"] = SCHEMA_VERSION
        f.attrs.update({k: getattr(header, k) for k in ("model_name", "model_sha256")})
        f.attrs["model_trained"] = bool(header.model_trained)
        f.attrs.update({name: int(getattr(header, name)) for name in INT_FIELDS})
        f.attrs["preprocessing"] = json.dumps(header.preprocessing, sort_keys=True)
        f.attrs["clmr_embed_version"] = __version__
        f.attrs["created"] = f.attrs["updated"] = timestamp()
        f.create_group("tracks")
        f.create_group("errors")


def _track_attrs(group: h5py.Group) -> dict[str, Any]:
    attrs = {k: v.item() if isinstance(v, np.generic) else v for k, v in group.attrs.items()}
    attrs["flags"] = tuple(json.loads(attrs.get("flags", "[]")))
    return attrs


def read_index(f: h5py.File) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """(track id -> attrs, relpath -> error) from the catalog, or from the groups if it is stale."""
    if CATALOG in f:
        catalog = json.loads(f[CATALOG].asstr()[()])
        tracks, errors = catalog["tracks"], catalog["errors"]
        if len(tracks) == len(f["tracks"]) and len(errors) == len(f["errors"]):
            return {tid: dict(a, flags=tuple(a["flags"])) for tid, a in tracks.items()}, errors
    tracks = {tid: _track_attrs(g) for tid, g in f["tracks"].items()}
    errors = {str(g.attrs["relpath"]): str(g.attrs["reason"]) for g in f["errors"].values()}
    return tracks, errors


def write_catalog(f: h5py.File, tracks: dict[str, dict[str, Any]], errors: dict[str, str]) -> None:
    """Replace the catalog with these track attrs and errors."""
    if CATALOG in f:
        del f[CATALOG]
    f[CATALOG] = json.dumps({"tracks": tracks, "errors": errors})

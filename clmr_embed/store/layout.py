"""What a store holds: its header, track records, and the checksummed HDF5 pieces they live in."""

from __future__ import annotations

import functools
import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import numpy.typing as npt

from clmr_embed.errors import StoreDamagedError, StoreError

SCHEMA_VERSION = 2  # a manifest file plus immutable segment files (1: one self-contained file)
LEGACY_SCHEMA = 1
INT_FIELDS = ("sample_rate", "window_samples", "hop_samples", "embedding_dim")
# v110 on: object headers and chunk indexes carry checksums, so damaged metadata raises too
LIBVER = ("v110", "latest")
# one chunk per dataset up to this many bytes, so a checksum failure names exactly one track
MAX_CHUNK_BYTES = 1 << 20
ARRAYS = ("embeddings", "starts_s", "mean")  # the datasets of an embedded track's group
# what h5py and json raise on damaged bytes: a failed checksum (OSError, RuntimeError), a
# missing object (KeyError), garbage where JSON or a number was expected (the others)
READ_ERRORS = (OSError, RuntimeError, KeyError, ValueError, TypeError, AttributeError)


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
    engine: str = "onnxruntime"  # the inference engine that ran the model
    precision: str = "fp32"  # the arithmetic it ran in

    def fingerprint(self) -> str:
        """The values that must match for embeddings to be comparable.

        A low precision is part of it, with its engine (their int8 kernels and float layers
        differ): such embeddings are close to fp32's, not equal, so a store holds one path's.
        fp32 keeps the spelling of stores made before engines existed; fp32 engines agree to
        ~1e-6, so another one there is a warning, not a refusal.
        """
        base = (
            f"{self.model_sha256}:{self.sample_rate}:{self.window_samples}:"
            f"{self.hop_samples}:{self.embedding_dim}"
        )
        return base if self.precision == "fp32" else f"{base}:{self.engine}-{self.precision}"

    def legacy_fingerprint(self) -> str:
        """The fingerprint as schema 1 spelled it (journals of older versions still replay)."""
        return f"{LEGACY_SCHEMA}:{self.fingerprint()}"

    def describe(self, other: StoreHeader | None = None) -> str:
        """'model X (sha256 abc…, hop H, dim D)', plus rate/window when they differ from other."""
        parts = [f"sha256 {self.model_sha256[:16]}…", f"hop {self.hop_samples}"]
        parts.append(f"dim {self.embedding_dim}")
        for name in ("sample_rate", "window_samples"):
            if other is not None and getattr(other, name) != getattr(self, name):
                parts.append(f"{name} {getattr(self, name)}")
        if other is not None and (other.precision, other.engine) != (self.precision, self.engine):
            parts.append(f"precision {self.precision} on {self.engine}")
        return f"model {self.model_name} ({', '.join(parts)})"

    def to_dict(self) -> dict[str, Any]:
        """The header as JSON-ready values (the manifest's `header`)."""
        return asdict(self)


def header_from(values: Any, path: Path) -> StoreHeader:
    """A header from manifest JSON or schema-1 attrs; StoreDamagedError if fields are bad."""
    try:
        preprocessing = values["preprocessing"]
        return StoreHeader(
            model_name=str(values["model_name"]),
            model_sha256=str(values["model_sha256"]),
            model_trained=bool(values["model_trained"]),
            preprocessing=json.loads(preprocessing)
            if isinstance(preprocessing, str)
            else dict(preprocessing),
            engine=str(values.get("engine", "onnxruntime")),
            precision=str(values.get("precision", "fp32")),
            **{name: int(values[name]) for name in INT_FIELDS},
        )
    except READ_ERRORS as exc:
        raise StoreDamagedError(
            f"store {path} has a damaged header ({exc}); start it over with the force option"
        ) from None


def header_attrs(header: StoreHeader) -> dict[str, Any]:
    """The header as HDF5 attributes (for h5py users; readers use the checksummed JSON)."""
    attrs = {k: v for k, v in header.to_dict().items() if k != "preprocessing"}
    attrs["preprocessing"] = json.dumps(header.preprocessing, sort_keys=True)
    return attrs


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


def open_h5(path: Path) -> h5py.File:
    """Open a store file read-only, turning a missing or non-HDF5 file into a StoreError."""
    if not path.is_file():
        raise StoreError(f"store {path} does not exist; create it with clmr-embed extract")
    try:
        return h5py.File(path, "r")
    except (OSError, RuntimeError) as exc:
        raise StoreError(f"store {path} is not a readable HDF5 file ({exc})") from None


def memory_file() -> h5py.File:
    """An HDF5 file built in memory (its image is written to disk in one plain write).

    HDF5 writing straight to a full disk reports the failure late, from h5py's close, or
    crashes; a plain write of the image fails cleanly with the real errno.
    """
    return h5py.File(uuid.uuid4().hex, "w", driver="core", backing_store=False, libver=LIBVER)


def file_image(f: h5py.File) -> bytes:
    """The bytes of an in-memory HDF5 file, complete (closes it)."""
    f.flush()
    image = bytes(f.id.get_file_image())
    f.close()
    return image


@functools.cache
def _dataset_plist(chunks: tuple[int, ...]) -> h5py.h5p.PropDCID:
    """A chunked, fletcher32 dataset-creation property list (built once per chunk shape)."""
    plist = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    plist.set_chunk(chunks)
    plist.set_fletcher32()
    return plist


def put_array(group: h5py.Group, name: str, data: npt.NDArray[Any]) -> None:
    """A chunked, fletcher32-checksummed dataset: reading a damaged chunk raises.

    Made through h5py's low-level API: a commit creates three per track, and the high-level
    create_dataset costs twice as much.
    """
    data = np.ascontiguousarray(data)
    rows = max(1, MAX_CHUNK_BYTES // max(1, data[:1].nbytes))  # data: at least one row
    chunks = (min(len(data), rows), *data.shape[1:])
    dataset = h5py.h5d.create(
        group.id,
        name.encode(),
        h5py.h5t.py_create(data.dtype),
        h5py.h5s.create_simple(data.shape),
        dcpl=_dataset_plist(chunks),
    )
    dataset.write(h5py.h5s.ALL, h5py.h5s.ALL, data)


def put_json(group: h5py.Group, name: str, value: Any) -> bytes:
    """Store `value` as checksummed JSON bytes; returns the bytes."""
    data = json.dumps(value, sort_keys=True).encode("utf-8")
    put_array(group, name, np.frombuffer(data, np.uint8))
    return data


def get_json(group: h5py.Group, name: str) -> Any:
    """The JSON value `put_json` stored (OSError/KeyError/ValueError if damaged)."""
    return json.loads(bytes(group[name][()]).decode("utf-8"))

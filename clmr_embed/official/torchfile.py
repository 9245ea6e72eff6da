"""Read torch `.pt`/`.ckpt` files without torch: zip or legacy format, arrays built by numpy.

A torch file is a pickle whose tensors point at raw storages (zip members, or blocks after the
pickle in the legacy format). The unpickler here resolves only the few globals a checkpoint of
tensors needs and refuses every other one, so reading a file never runs code from it.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from clmr_embed.errors import CheckpointError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # the first pickle of a legacy (non-zip) torch file
LEGACY_PROTOCOL = 1001
MAX_EXPANSION = 100  # torch stores storages uncompressed; a member that inflates more is a bomb
BFLOAT16 = "bfloat16"  # read as uint16, widened to float32 (numpy has no bfloat16)
STORAGE_DTYPES = {
    "FloatStorage": "<f4",
    "DoubleStorage": "<f8",
    "HalfStorage": "<f2",
    "BFloat16Storage": BFLOAT16,
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}
# Dict subclasses Lightning and argparse put in checkpoints, read as plain records.
RECORD_CLASSES = {
    ("argparse", "Namespace"),
    ("pytorch_lightning.utilities.parsing", "AttributeDict"),
    ("lightning_fabric.utilities.data", "AttributeDict"),
    ("lightning.fabric.utilities.data", "AttributeDict"),
}


@dataclass(frozen=True)
class _StorageType:
    dtype: str  # a numpy dtype string, or BFLOAT16


class _Record(dict):  # type: ignore[type-arg]
    """An allowed dict-like class (a Namespace, Lightning's AttributeDict) as a plain dict."""

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, dict):
            self.update(state)


def _array(raw: bytes, kind: _StorageType) -> np.ndarray:
    """A storage's bytes as a flat array (bfloat16 widened to float32)."""
    if kind.dtype != BFLOAT16:
        return np.frombuffer(raw, dtype=kind.dtype)
    return (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)


def _rebuild_tensor(
    storage: np.ndarray, offset: int, size: tuple[int, ...], stride: tuple[int, ...], *_: Any
) -> np.ndarray:
    """torch._utils._rebuild_tensor_v2 in numpy: a strided view of the storage, copied."""
    count = int(np.prod(size)) if size else 1
    if count == 0:
        return np.zeros(size, storage.dtype)
    end = offset + 1 + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
    if offset < 0 or end > storage.size:
        raise pickle.UnpicklingError("a tensor reaches past the end of its storage")
    view = np.lib.stride_tricks.as_strided(
        storage[offset:], shape=size, strides=[s * storage.itemsize for s in stride]
    )
    return np.array(view)


def _rebuild_parameter(data: np.ndarray, *_: Any) -> np.ndarray:
    return data


class _Pending:
    """A legacy storage whose bytes come after the pickle; tensors on it are built late."""

    array: np.ndarray = np.zeros(0)  # set once the bytes after the pickle are read


def _resolve(value: Any) -> Any:
    """Replace the deferred tensors of a legacy file by arrays, through containers."""
    if isinstance(value, _Deferred):
        return _rebuild_tensor(value.storage.array, *value.args)
    if isinstance(value, dict):
        for key, item in value.items():
            value[key] = _resolve(item)
        return value
    if isinstance(value, list):
        return [_resolve(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_resolve(item) for item in value)
    return value


@dataclass(frozen=True)
class _Deferred:
    storage: _Pending
    args: tuple[Any, ...]


def _rebuild_any(storage: Any, *args: Any) -> Any:
    if isinstance(storage, _Pending):
        return _Deferred(storage, args)
    return _rebuild_tensor(storage, *args)


GLOBALS: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_any,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("collections", "OrderedDict"): OrderedDict,
    **{("torch", name): _StorageType(dtype) for name, dtype in STORAGE_DTYPES.items()},
    **{key: _Record for key in RECORD_CLASSES},
}


class _Unpickler(pickle.Unpickler):
    """Builds only arrays, containers and the allowed records; any other global is refused."""

    def __init__(self, file: IO[bytes], storage: Callable[[tuple[Any, ...]], np.ndarray]) -> None:
        super().__init__(file, encoding="utf-8")
        self._storage = storage

    def find_class(self, module: str, name: str) -> Any:
        try:
            return GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refused global {module}.{name}") from None

    def persistent_load(self, pid: Any) -> Any:
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            raise pickle.UnpicklingError(f"refused persistent id {str(pid)[:40]}")
        return self._storage(pid)


def _storage_type(pid: tuple[Any, ...]) -> _StorageType:
    kind = pid[1]
    if not isinstance(kind, _StorageType):
        raise pickle.UnpicklingError(f"unknown storage type {kind!r}")
    return kind


def _element_size(kind: _StorageType) -> int:
    return 2 if kind.dtype == BFLOAT16 else np.dtype(kind.dtype).itemsize


def _read_zip(bundle: zipfile.ZipFile) -> Any:
    pickles = [n for n in bundle.namelist() if n.endswith("data.pkl") and n.count("/") == 1]
    if len(pickles) != 1:
        raise pickle.UnpicklingError("no single <archive>/data.pkl: not a torch zip file")
    prefix = pickles[0][: -len("data.pkl")]

    read: dict[str, np.ndarray] = {}  # tensors sharing a storage read its bytes once

    def storage(pid: tuple[Any, ...]) -> np.ndarray:
        kind, key = _storage_type(pid), str(pid[2])
        if key not in read:
            member = bundle.getinfo(f"{prefix}data/{key}")
            if member.file_size > MAX_EXPANSION * max(member.compress_size, 1024):
                raise pickle.UnpicklingError(f"storage {key} inflates {member.file_size} bytes")
            raw = bundle.read(member)
            read[key] = _array(raw, kind)
        return read[key]

    with bundle.open(pickles[0]) as data:
        return _Unpickler(io.BytesIO(data.read()), storage).load()


def _read_legacy(file: IO[bytes]) -> Any:
    header = _Unpickler(file, lambda pid: np.zeros(0))
    if header.load() != LEGACY_MAGIC or header.load() != LEGACY_PROTOCOL:
        raise pickle.UnpicklingError("not a torch file (no legacy magic number)")
    header.load()  # system info: byte order and type sizes of the writer
    storages: dict[str, tuple[_StorageType, _Pending]] = {}

    def storage(pid: tuple[Any, ...]) -> np.ndarray:
        # Filled after the main pickle, where the raw blocks follow; tensors on it wait for it.
        kind, key = _storage_type(pid), str(pid[2])
        return storages.setdefault(key, (kind, _Pending()))[1]  # type: ignore[return-value]

    result = _Unpickler(file, storage).load()
    size = os.fstat(file.fileno()).st_size
    for key in _Unpickler(file, storage).load():
        kind, pending = storages[str(key)]
        (count,) = struct.unpack("<q", file.read(8))
        nbytes = count * _element_size(kind)
        if not 0 <= nbytes <= size - file.tell():  # never allocate what the file cannot hold
            raise pickle.UnpicklingError("the file ends inside a tensor")
        raw = file.read(nbytes)
        pending.array = _array(raw, kind)
    return _resolve(result)


def read_torch_file(path: Path) -> Any:
    """The payload of a torch checkpoint, tensors as numpy arrays, without importing torch.

    Raises:
        CheckpointError: the file is missing, not a torch file, damaged, or needs a global
            other than tensors and plain containers (the message names the file and the global).
    """
    path = Path(path)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise CheckpointError(f"checkpoint {path} {what}; pass a .pt/.ckpt file")
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as bundle:
                return _read_zip(bundle)
        with open(path, "rb") as file:
            return _read_legacy(file)
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, KeyError, ValueError) as exc:
        raise CheckpointError(
            f"{path} is not a readable torch checkpoint ({exc}); pass a clmr-embed or official "
            "CLMR .pt/.ckpt file"
        ) from None
    except (
        struct.error,
        TypeError,
        AttributeError,
        IndexError,
        OverflowError,
        RecursionError,
    ) as exc:
        raise CheckpointError(f"{path} is a damaged torch checkpoint ({exc})") from None

"""The write-ahead journal of a store: one atomic .npz file per change, the --force marker."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import warnings
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from clmr_embed.atomic import atomic_path, fsync_path
from clmr_embed.store.failures import write_failure

ENTRY_SUFFIX = ".npz"
ERROR_SUFFIX = ".error.npz"  # track ids cannot contain ".", so error entries never collide
TEMP_PREFIX = "."  # half-written entries (atomic_path temp files, older .tmp-*); never read
FRESH_MARKER = "FRESH.json"  # a --force run whose new store is not committed yet
TRACK_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")  # safe as a file name and as an HDF5 group name

Arrays = dict[str, npt.NDArray[np.float32]]


def check_track_id(track_id: str) -> None:
    """Raise ValueError unless `track_id` is 1-128 characters of [A-Za-z0-9_-]."""
    if not isinstance(track_id, str) or not TRACK_ID.fullmatch(track_id):
        raise ValueError(f"track id {track_id!r} must be 1-128 characters of [A-Za-z0-9_-]")


def track_entry(track_id: str) -> str:
    """Journal file name of a track, alias or removal: the latest change per id wins."""
    return track_id + ENTRY_SUFFIX


def error_key(relpath: str) -> str:
    """Stable key of an error, by relative path (a `/` cannot be a file or group name)."""
    return hashlib.sha256(relpath.encode("utf-8")).hexdigest()[:24]


def error_entry(relpath: str) -> str:
    """Journal file name of an error record or its clearing."""
    return error_key(relpath) + ERROR_SUFFIX


class Journal:
    """The `<store>.journal/` folder; each entry holds the final state of one key.

    Because an entry states "key K is now X" (not "do X"), replaying one is idempotent and the
    entries can be merged in any order.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def names(self) -> list[str]:
        """Sorted file names of the complete entries (temp files excluded)."""
        if not self.directory.is_dir():
            return []
        return sorted(
            p.name
            for p in self.directory.iterdir()
            if p.name.endswith(ENTRY_SUFFIX) and not p.name.startswith(TEMP_PREFIX)
        )

    def write(self, name: str, meta: dict[str, Any], arrays: Arrays | None = None) -> None:
        """Write an entry durably (clmr_embed.atomic: temp file, fsync, rename, folder fsync)."""
        self._ensure_dir()
        payload: dict[str, Any] = {"meta": np.array(json.dumps(meta))}
        payload.update(arrays or {})
        self._write_atomic(name, lambda f: np.savez(f, **payload))

    def read(self, name: str, arrays: bool = True) -> tuple[dict[str, Any], Arrays] | None:
        """Load an entry's metadata (and arrays); None (with a warning) if it is unreadable."""
        try:
            with np.load(self.directory / name, allow_pickle=False) as npz:
                meta = json.loads(str(npz["meta"]))
                keys = [k for k in npz.files if k != "meta"] if arrays else []
                data = {k: npz[k] for k in keys}
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            warnings.warn(
                f"journal entry {self.directory / name} is unreadable ({exc}); dropping it",
                stacklevel=3,
            )
            return None
        return meta, data

    def delete(self, names: Iterable[str]) -> None:
        """Remove merged entries (a missing one is fine: deletion may have been interrupted)."""
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.directory / name)
        if self.directory.is_dir():
            fsync_path(self.directory)

    def clean_temp(self) -> None:
        """Remove entries a killed writer left half-written."""
        if self.directory.is_dir():
            for p in self.directory.glob(TEMP_PREFIX + "*"):
                p.unlink(missing_ok=True)

    def clear(self) -> None:
        """Drop every entry and the fresh-store marker."""
        self.delete(self.names())
        self.remove_marker()

    def read_marker(self) -> str | None:
        """Header fingerprint of an uncommitted --force run, or None."""
        try:
            return str(json.loads((self.directory / FRESH_MARKER).read_text())["fingerprint"])
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):
            return ""  # unreadable marker: matches no header, so the run is discarded

    def write_marker(self, fingerprint: str) -> None:
        """Record that entries belong to a new store replacing the current one at commit."""
        self._ensure_dir()
        data = json.dumps({"fingerprint": fingerprint}).encode()
        self._write_atomic(FRESH_MARKER, lambda f: f.write(data))

    def remove_marker(self) -> None:
        """Forget the --force marker once the new store is in place."""
        marker = self.directory / FRESH_MARKER
        if marker.exists():
            marker.unlink()
            fsync_path(self.directory)

    def _ensure_dir(self) -> None:
        if not self.directory.is_dir():
            self.directory.mkdir(parents=True, exist_ok=True)
            fsync_path(self.directory.parent)

    def remove_if_empty(self) -> None:
        """Tidy up after a clean close: drop the folder if nothing is pending."""
        with contextlib.suppress(OSError):
            self.directory.rmdir()

    def _write_atomic(self, name: str, write: Any) -> None:
        try:
            with atomic_path(self.directory / name) as tmp, open(tmp, "wb") as f:
                write(f)
        except OSError as exc:
            raise write_failure(
                exc, f"write journal entry {self.directory / name}", "finished tracks are kept"
            ) from exc

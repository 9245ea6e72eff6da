"""Files derived from a store (indexes, maps), kept beside it, rebuilt when its content changes."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from clmr_embed.atomic import atomic_path
from clmr_embed.search.vectors import StoreView

Arrays = dict[str, npt.NDArray[np.generic]]


def store_fingerprint(store: StoreView) -> str:
    """The key of everything derived from a store's vectors (indexes, maps, tag scores).

    It hashes the header fingerprint, the store's `generation` and each track's (id, content
    sha256, alias target, window count). The generation (schema 2: +1 per commit that changed
    content) catches what the attributes cannot show: a forced rerun with another engine or
    precision re-embeds the same files into new vectors, as does a repaired track. The content
    hash tells apart another store at the same path and generation (a restored backup, a
    schema-1 store, whose generation is always 0). Merging segments changes neither, and a
    copy of the store keeps its key.
    """
    digest = hashlib.sha256(f"{store.header.fingerprint()}:g{store.generation}".encode())
    for tid in sorted(store.track_ids):
        a = store.attrs(tid)
        digest.update(f"\n{tid}:{a['content_sha256']}:{a['alias_of']}:{a['n_windows']}".encode())
    return digest.hexdigest()


def sidecar_dir(store_path: Path) -> Path:
    """`<store>.cache/`, beside the store like its journal and lock."""
    store_path = Path(store_path)
    return store_path.with_name(store_path.name + ".cache")


def read_arrays(path: Path, fingerprint: str) -> Arrays | None:
    """The arrays saved by `write_arrays`, or None if missing, unreadable or of another store."""
    try:
        with np.load(path, allow_pickle=False) as saved:
            if str(saved["fingerprint"]) != fingerprint:
                return None
            return {name: saved[name] for name in saved.files if name != "fingerprint"}
    except (OSError, ValueError, KeyError):
        return None


def write_arrays(path: Path, fingerprint: str, arrays: Arrays) -> bool:
    """Save arrays tagged with the store fingerprint, atomically; False (and a warning) if the
    folder is not writable, since a cache is an optimisation and never a reason to fail."""
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            named: dict[str, Any] = {"fingerprint": np.array(fingerprint), **arrays}
            np.savez(handle, **named)
    except OSError as exc:
        warnings.warn(f"cannot cache {path} ({exc.strerror}); recomputed next time", stacklevel=2)
        return False
    return True

"""Audio files of a store's tracks, found under the library roots; nothing else is served."""

from __future__ import annotations

import os
import threading
from pathlib import Path, PurePosixPath

from starlette.exceptions import HTTPException

from clmr_embed.digest import file_sha256
from clmr_embed.search.vectors import StoreView


class AudioFiles:
    """Maps a stored track id to the file it was embedded from.

    A file is served only if the store records the id, `<root>/<relpath>` resolves (symlinks
    followed) to a path inside that root, and its bytes still have the recorded sha256 (hashed
    once per size and mtime). A relpath that is absolute or climbs with `..` never resolves.
    """

    def __init__(self, store: StoreView, roots: tuple[Path, ...]) -> None:
        self._store = store
        self._ids = frozenset(store.track_ids)
        self.roots = tuple(Path(r).resolve() for r in roots)
        self._hashes: dict[tuple[Path, int, int], str] = {}
        self._lock = threading.Lock()

    def path(self, track_id: str) -> Path:
        """The verified file of a track.

        Raises:
            HTTPException: 404 for an unknown id or a missing or changed file, 403 for a
                recorded path that escapes its root (an absolute path, `..`, a symlink out).
        """
        if track_id not in self._ids:
            raise HTTPException(404, "no such track in the store")
        attrs = self._store.attrs(track_id)
        relpath = PurePosixPath(str(attrs["relpath"]))
        if relpath.is_absolute() or ".." in relpath.parts:
            raise HTTPException(403, "the stored path leaves the library root")
        escaped = False
        for root in self.roots:
            candidate = (root / relpath).resolve()
            if not candidate.is_relative_to(root):
                escaped = escaped or (root / relpath).exists()
                continue
            if candidate.is_file() and self._sha256(candidate) == attrs["content_sha256"]:
                return candidate
        if escaped:
            raise HTTPException(403, "the file links outside the library root")
        raise HTTPException(404, "the track's file is not under the library roots, or changed")

    def _sha256(self, path: Path) -> str:
        stat = os.stat(path)
        key = (path, stat.st_size, stat.st_mtime_ns)
        with self._lock:
            known = self._hashes.get(key)
        if known is None:
            known = file_sha256(path)
            with self._lock:
                self._hashes[key] = known
        return known

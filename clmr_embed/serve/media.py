"""Audio files of a store's tracks, found under the library roots; nothing else is served."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from starlette.exceptions import HTTPException

from clmr_embed.digest import file_sha256
from clmr_embed.roots import LibraryRoot, leaves_root
from clmr_embed.search.vectors import StoreView


def serving_roots(
    given: tuple[Path, ...], recorded: tuple[LibraryRoot, ...]
) -> tuple[LibraryRoot, ...]:
    """Folders given by the user (each holding relpaths as they are) or, by default, the roots
    the store recorded at extract, each resolved now."""
    roots = tuple(LibraryRoot(Path(folder)) for folder in given) or recorded
    return tuple(LibraryRoot(root.folder.resolve(), root.prefix) for root in roots)


class AudioFiles:
    """Maps a stored track id to the file it was embedded from.

    A file is served only if the store records the id, a root's candidate for its relpath
    (`LibraryRoot.candidate`) resolves, symlinks followed, to a path inside that root, and its
    bytes still have the recorded sha256 (hashed once per size and mtime). A relpath that
    `leaves_root` (absolute, or climbing with `..`) never resolves.
    """

    def __init__(self, store: StoreView, roots: tuple[LibraryRoot, ...]) -> None:
        self._store = store
        self._ids = frozenset(store.track_ids)
        self.roots = roots  # resolved (serving_roots)
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
        relpath = str(attrs["relpath"])
        if leaves_root(relpath):
            raise HTTPException(403, "the stored path leaves the library root")
        escaped = False
        for root in self.roots:
            candidate = root.candidate(relpath)
            if candidate is None:
                continue
            real = candidate.resolve()
            if not real.is_relative_to(root.folder):
                escaped = escaped or candidate.exists()
            elif real.is_file() and self._sha256(real) == attrs["content_sha256"]:
                return real
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

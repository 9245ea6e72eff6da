"""A store's single-writer lock (an exclusive flock on `<store>.lock`) and its writable path."""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from pathlib import Path
from typing import BinaryIO

from clmr_embed.errors import StoreError
from clmr_embed.store.failures import write_failure


class StoreLock:
    """An exclusive, non-blocking flock held for the life of a StoreWriter.

    flock locks belong to the open file description, so a second open in the same process
    conflicts too, and the kernel drops the lock when a killed writer's descriptors close:
    a stale lock file never blocks anyone. The file itself is never deleted, because
    deleting it would let two writers lock two different inodes. The writer passes the real
    path (symlinks resolved), so a writer on a link and one on its target lock the same file.
    """

    def __init__(self, store: Path) -> None:
        self.store = store
        self.path = store.with_name(store.name + ".lock")
        # a file object, not a bare fd: an abandoned writer's lock is released when collected
        self._file: BinaryIO | None = None

    def acquire(self) -> None:
        """Take the lock or raise StoreError naming the store (and the holder's pid)."""
        try:
            file = open(self.path, "a+b")  # noqa: SIM115 (held open for the writer's lifetime)
        except OSError as exc:  # a read-only file system or folder, not a lock conflict
            raise write_failure(exc, f"lock store {self.store} (lock file {self.path})") from None
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(file.fileno())
            file.close()
            raise StoreError(
                f"store {self.store} is locked: another clmr-embed extract{holder} is writing it; "
                f"wait for it to finish or use another output file (lock file {self.path})"
            ) from None
        except BaseException:
            file.close()
            raise
        file.truncate(0)
        file.write(f"{os.getpid()}\n".encode())
        file.flush()
        self._file = file

    def release(self) -> None:
        """Drop the lock (idempotent)."""
        if self._file is not None:
            file, self._file = self._file, None
            with contextlib.suppress(OSError):
                fcntl.flock(file.fileno(), fcntl.LOCK_UN)
            file.close()


def _read_pid(fd: int) -> str:
    """' (pid N)' from the lock file, or '' when it holds no pid (informational only)."""
    try:
        text = os.pread(fd, 32, 0).decode().strip()
    except OSError:
        return ""
    return f" (pid {text})" if text.isdigit() else ""


def writable_path(path: Path) -> Path:
    """The real path to write (a symlink's target), refusing a read-only store or disk."""
    real = Path(os.path.realpath(path))
    if not real.parent.is_dir():
        raise StoreError(f"the folder {real.parent} of store {path} does not exist; create it")
    if real.is_dir():
        raise StoreError(f"store {path} is a folder; give an .h5 file")
    if os.statvfs(real.parent).f_flag & os.ST_RDONLY:
        raise StoreError(f"store {path} is on a read-only file system; use a writable folder")
    if real.exists():
        mode = stat.S_IMODE(real.stat().st_mode)
        if not mode & 0o222 or not os.access(real, os.W_OK):
            raise StoreError(
                f"store {path} is read-only (mode {mode:03o}); make it writable "
                "(chmod u+w) or use another output file"
            )
    return real

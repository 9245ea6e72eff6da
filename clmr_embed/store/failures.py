"""Why writing a store failed, from an OSError or h5py's message, as one StoreError line."""

from __future__ import annotations

import errno
import os
import re

from clmr_embed.errors import DiskFullError, StoreError

DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
NO_ACCESS = frozenset({errno.EACCES, errno.EPERM})
# h5py raises OSError/RuntimeError without .errno; HDF5's text carries it ("errno = 28, ...")
_HDF5_ERRNO = re.compile(r"errno = (\d+)")


def error_number(exc: BaseException) -> int | None:
    """The errno behind a failed write, or None when nothing names one."""
    if isinstance(exc, OSError) and exc.errno:
        return exc.errno
    match = _HDF5_ERRNO.search(str(exc))
    return int(match.group(1)) if match else None


def write_failure(exc: BaseException, what: str, kept: str = "") -> StoreError:
    """The StoreError for a failed write; `what` completes "cannot ...", `kept` says what is safe.

    Only a full disk or quota gets the "free disk space" advice; a read-only file system and a
    permission problem name their own fix.
    """
    code = error_number(exc)
    reason = os.strerror(code) if code else str(exc).splitlines()[0]
    tail = f"; {kept}" if kept else ""
    if code in DISK_FULL:
        return DiskFullError(f"cannot {what}: the disk is full ({reason}); free disk space{tail}")
    if code == errno.EROFS:
        return StoreError(f"cannot {what}: the file system is read-only; use a writable folder")
    if code in NO_ACCESS:
        return StoreError(
            f"cannot {what}: permission denied; make the folder writable or use another file"
        )
    return StoreError(f"cannot {what} ({reason}){tail}")

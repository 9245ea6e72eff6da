"""Library roots: the folders a store's relative paths were found under, as extract scanned them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

MAX_ROOTS = 32  # roots a store keeps, newest first: older runs' folders beyond this are dropped


def leaves_root(relpath: str) -> bool:
    """True for a relpath that is absolute or climbs with `..`: no root may hold it."""
    parts = PurePosixPath(relpath)
    return parts.is_absolute() or ".." in parts.parts


@dataclass(frozen=True)
class LibraryRoot:
    """Where the files of the relpaths that start with `prefix` are: `folder / rest`."""

    folder: Path  # the resolved input folder (for a file given directly: its folder)
    # the relpath prefix of this input: "music/" for a folder among several inputs (the scan
    # prefixes their relpaths so that equal names do not clash), else ""
    prefix: str = ""

    def candidate(self, relpath: str) -> Path | None:
        """`folder / rest` for a relpath of this root (not resolved, not checked), else None.

        A relpath that `leaves_root` has no candidate under any root.
        """
        if leaves_root(relpath) or not relpath.startswith(self.prefix):
            return None
        rest = relpath[len(self.prefix) :]
        return self.folder / rest if rest else None

    def to_dict(self) -> dict[str, str]:
        """JSON-ready fields (the store's manifest keeps a list of these)."""
        return {"folder": str(self.folder), "prefix": self.prefix}

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> LibraryRoot:
        return cls(Path(str(value["folder"])), str(value.get("prefix", "")))


def merge_roots(new: Iterable[LibraryRoot], old: Iterable[LibraryRoot]) -> tuple[LibraryRoot, ...]:
    """This run's roots first, then earlier ones not among them, at most MAX_ROOTS.

    Earlier roots stay: a store keeps the tracks of earlier runs over other folders until
    they are pruned, and their files are still found there.
    """
    merged = list(dict.fromkeys([*new, *old]))
    return tuple(merged[:MAX_ROOTS])

"""Verifying every track of a store, and compacting its segments: what `clmr-embed check` runs."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from clmr_embed.store.manifest import read_manifest
from clmr_embed.store.reader import open_store
from clmr_embed.store.writer import open_writer


class DamagedTrack(NamedTuple):
    """A track whose stored arrays fail their checksum or cannot be read."""

    track_id: str
    relpath: str
    reason: str


@dataclass(frozen=True)
class CheckReport:
    """What verifying a store found; `exit_code` is 1 when any track is damaged."""

    store: str  # the store's path as given
    schema: int  # its schema version
    generation: int  # commits so far
    segments: int  # segment files
    tracks: int  # tracks and aliases verified
    damaged: tuple[DamagedTrack, ...]

    @property
    def exit_code(self) -> int:
        return 1 if self.damaged else 0

    def to_dict(self) -> dict[str, Any]:
        """The `--json` object."""
        return {
            "store": self.store,
            "schema": self.schema,
            "generation": self.generation,
            "segments": self.segments,
            "tracks": self.tracks,
            "damaged": [t._asdict() for t in self.damaged],
            "exit_code": self.exit_code,
        }


@dataclass(frozen=True)
class CompactReport:
    """What compacting a store did."""

    segments_before: int
    segments_after: int
    bytes_written: int
    wall_s: float


def check_store(path: Path) -> CheckReport:
    """Read every track's arrays (checksums verified) and list the damaged ones.

    Raises:
        StoreError: the store cannot be opened (missing, not ours, damaged manifest).
    """
    with open_store(path) as store:
        damaged = store.verify()
        return CheckReport(
            store=str(path),
            schema=store.schema_version,
            generation=store.generation,
            segments=len(store.segments),
            tracks=len(store),
            damaged=tuple(
                DamagedTrack(tid, store.attrs(tid)["relpath"], reason)
                for tid, reason in sorted(damaged.items(), key=lambda item: item[0])
            ),
        )


def compact_store(path: Path) -> CompactReport:
    """Merge a store's segments into as few files as possible (takes the writer's lock).

    A schema-1 store is upgraded. Damaged tracks stay listed as damaged.

    Raises:
        StoreError: locked by a running writer, read-only, full disk, not a store.
    """
    began = time.perf_counter()
    header = read_manifest(Path(os.path.realpath(path))).header
    with open_writer(path, header) as writer:
        before = writer.segments
        written = writer.compact()
        after = writer.segments
    return CompactReport(before, after, written, time.perf_counter() - began)

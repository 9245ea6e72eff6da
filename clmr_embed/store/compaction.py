"""Merging segments: the newest ones when enough pile up (automatic), or all of them (compact)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from clmr_embed.store.segment import SegmentBuilder, SegmentInfo, segment_name
from clmr_embed.store.view import SegmentSet, StoreIndex

FANOUT = 8  # merge when this many small segments of one level end the list
# Segments are built in memory, then written in one go: about this big at most. One over half of
# it is full: automatic merges leave it alone (whole-store rewrites happen only on compact).
SEGMENT_BYTES = 256 << 20


def tail_run(segments: Sequence[SegmentInfo]) -> int:
    """Where the newest segments to merge now begin (len(segments): nothing to merge).

    A commit adds a level-0 segment; FANOUT segments of one level merge into one of the next,
    so a track is rewritten about log_FANOUT(commits) times and the segment count stays small.
    """

    def small(info: SegmentInfo) -> bool:
        return info.size < SEGMENT_BYTES // 2

    end = start = len(segments)
    if not segments or not small(segments[-1]):
        return end
    level = segments[-1].level
    while start > 0 and small(segments[start - 1]) and segments[start - 1].level == level:
        start -= 1
    return start if end - start >= FANOUT else end


class SegmentFiles:
    """Numbered segment files written into a store's folder, each at most ~SEGMENT_BYTES."""

    def __init__(self, folder: Path, serial: int, level: int) -> None:
        self.folder = folder
        self.serial = serial  # the number of the last segment file written
        self.level = level  # of the segments written
        self.written: list[SegmentInfo] = []
        self._builder = SegmentBuilder()

    def __enter__(self) -> SegmentFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        self._builder.discard()  # frees an unwritten in-memory file (after an error)

    def room(self) -> SegmentBuilder:
        """The segment to add to: a new one once the current one is full."""
        if self._builder.nbytes >= SEGMENT_BYTES:
            self._write()
        return self._builder

    def finish(self) -> list[SegmentInfo]:
        """Write the last segment (unless it is empty); every segment written."""
        if not self._builder.empty:
            self._write()
        return self.written

    def _write(self) -> None:
        self.serial += 1
        self.written.append(self._builder.write(self.folder, segment_name(self.serial), self.level))
        self._builder = SegmentBuilder()


def merge(view: SegmentSet, run: Sequence[SegmentInfo], files: SegmentFiles, whole: bool) -> None:
    """Write the merged state of `run` (consecutive segments, newest last) into `files`.

    `whole`: the run starts at the oldest segment, so removals and cleared errors have nothing
    older to hide and are dropped. A track whose arrays cannot be read stays listed as damaged.
    """
    merged = StoreIndex()
    for info in run:
        segment = view.segments[info.name]
        merged.apply(info.name, segment.catalog, segment.problem)
    for tid, attrs in merged.tracks.items():
        builder = files.room()
        if attrs["alias_of"]:
            builder.put_alias(tid, attrs)
            continue
        found = merged.damaged.get(tid) or view.try_arrays(tid)
        if isinstance(found, dict):
            builder.put_track(tid, attrs, found)
        else:
            builder.put_damaged(tid, attrs, found)
    builder = files.room()
    if not whole:
        for tid in sorted(merged.removed):
            builder.remove(tid)
        for relpath in sorted(merged.cleared):
            builder.clear_error(relpath)
    for relpath, reason in merged.errors.items():
        builder.set_error(relpath, reason)

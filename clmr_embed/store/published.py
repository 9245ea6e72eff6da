"""The writer's published side: the manifest on disk, its open segments, merges and clean-up."""

from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from clmr_embed.atomic import fsync_path, write_bytes
from clmr_embed.roots import LibraryRoot, merge_roots
from clmr_embed.store.failures import write_failure
from clmr_embed.store.layout import LEGACY_SCHEMA, SCHEMA_VERSION, StoreHeader
from clmr_embed.store.manifest import Manifest, merge_provenance, write_manifest
from clmr_embed.store.segment import (
    CATALOG_SUFFIX,
    SEGMENT_PREFIX,
    SEGMENT_SUFFIX,
    SegmentBuilder,
    SegmentInfo,
    catalog_name,
    open_segment,
    segment_folder,
    segment_name,
)
from clmr_embed.store.view import SegmentSet, StoreIndex, open_segments

# Merging segments: the newest ones when enough pile up (automatic), or all of them (compact).
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


# files of ours in the segment folder: segments, their catalogs, atomic_path temp files
OWN_FILE = re.compile(rf"\.?{SEGMENT_PREFIX}(\d+)({SEGMENT_SUFFIX}|{CATALOG_SUFFIX})(\..*\.tmp)?")


class PublishedStore:
    """The manifest last published at `path` and its segments, open for reading.

    Segment files are written first and never change; a new manifest naming them is then
    installed by one atomic rename, and only after that are files it no longer names deleted
    (readers that opened them keep reading their snapshot).
    """

    def __init__(self, path: Path, header: StoreHeader) -> None:
        self.path = path
        self.folder = segment_folder(path)
        self.manifest = Manifest(header)
        self.view = SegmentSet(path, header.embedding_dim)  # the published segments, open

    def load(self, manifest: Manifest) -> None:
        """Adopt the store on disk: upgrade a schema-1 file, open the segments.

        A segment whose track list is unreadable is left out (with a warning); the next
        publish drops it, and its files are embedded again as new.
        """
        if manifest.schema == LEGACY_SCHEMA:
            manifest = self._upgrade(manifest)
        self.view.close()
        self.view = open_segments(self.path, manifest, skip_damaged=True)
        skipped = set(self.view.skipped)
        self.manifest = replace(
            manifest, segments=tuple(s for s in manifest.segments if s.name not in skipped)
        )
        self.remove_unreferenced(manifest)  # skipped segments stay until a publish drops them

    def publish(self, manifest: Manifest, whole: bool) -> int:
        """Install `manifest` (its new segments are written); `whole`: it replaces all others.

        Returns the bytes of the manifest file.
        """
        written = write_manifest(self.path, manifest)
        self.manifest = manifest
        if whole:
            self.view.close()
            self.view = open_segments(self.path, manifest)
        else:
            known = set(self.view.segments)
            for info in manifest.segments:
                if info.name not in known:
                    self.view.add(open_segment(self.folder, info))
        self.remove_unreferenced()
        return written

    def add_provenance(
        self, roots: tuple[LibraryRoot, ...], shards: tuple[dict[str, Any], ...] = ()
    ) -> None:
        """Publish `roots` ahead of the recorded ones and `shards` after them, if that changes
        them, as a commit that changed no track: no segment, the same generation (a moved
        library re-embeds nothing, and the caches derived from the vectors stay valid)."""
        new = replace(
            self.manifest,
            roots=merge_roots(roots, self.manifest.roots),
            shards=merge_provenance(shards, self.manifest.shards),
        )
        if new != self.manifest:
            self.publish(new, whole=False)

    def adopt(self, source: Path, infos: Sequence[SegmentInfo]) -> int | None:
        """Publish another store's segments (in folder `source`) as this store's newest, copied
        under new names, as one commit; bytes copied, or None when a copy fails its sha256 (a
        damaged segment: nothing is published, the copies are deleted).

        Segment files hold no store-specific data, so a copy is a valid segment here; a copy
        killed before the manifest is published is an unreferenced file, deleted on the next
        open.
        """
        serial, copied = self.serial(self.manifest), 0
        adopted: list[SegmentInfo] = []
        for info in infos:
            data = (source / info.name).read_bytes()  # read once: hashed, then written
            if info.sha256 and hashlib.sha256(data).hexdigest() != info.sha256:
                self.remove_unreferenced()
                return None
            serial += 1
            name = segment_name(serial)
            write_bytes(self.folder / name, data)
            write_bytes(
                self.folder / catalog_name(name), (source / catalog_name(info.name)).read_bytes()
            )
            adopted.append(replace(info, name=name))
            copied += info.size
        new = replace(
            self.manifest, generation=self.manifest.generation + 1, serial=serial,
            segments=self.manifest.segments + tuple(adopted),
        )  # fmt: skip
        return copied + self.publish(new, whole=False)

    def merge_tail(self) -> int:
        """Merge the newest segments while enough of one level pile up; bytes written.

        A failure only warns: the commit before it is safe, and the merge is tried next time.
        """
        written = 0
        try:
            while (start := tail_run(self.manifest.segments)) < len(self.manifest.segments):
                written += self.merge(start)
        except (OSError, RuntimeError) as exc:
            warnings.warn(str(write_failure(exc, f"merge segments of {self.path}")), stacklevel=3)
        return written

    def merge(self, start: int) -> int:
        """Replace segments[start:] by their merge (0: compact the whole store); bytes written."""
        run = self.manifest.segments[start:]
        built = self._merged(self.view, run, max(info.level for info in run) + 1, start == 0)
        new = replace(
            self.manifest,
            serial=self.serial(self.manifest, built),
            segments=self.manifest.segments[:start] + tuple(built),
        )
        written = sum(info.size for info in built) + write_manifest(self.path, new)
        self.manifest = new
        self.view.drop(info.name for info in run)
        for info in built:
            self.view.add(open_segment(self.folder, info))
        self.remove_unreferenced()
        return written

    def serial(self, manifest: Manifest, built: list[SegmentInfo] | None = None) -> int:
        """The highest segment number used: by the manifest, `built`, or any file in the folder."""
        names = self._own_files() + [info.name for info in built or ()]
        found = [int(m.group(1)) for m in map(OWN_FILE.fullmatch, names) if m]
        return max([manifest.serial, *found])

    def remove_unreferenced(self, published: Manifest | None = None) -> None:
        """Delete segment files the published manifest does not name (merged, replaced, or
        written by a commit killed before its manifest was published)."""
        keep = {info.name for info in (published or self.manifest).segments}
        keep |= {name.removesuffix(SEGMENT_SUFFIX) + CATALOG_SUFFIX for name in keep}
        gone = [name for name in self._own_files() if name not in keep]
        for name in gone:
            (self.folder / name).unlink(missing_ok=True)
        if gone:
            fsync_path(self.folder)

    def close(self) -> None:
        self.view.close()

    def _merged(
        self, view: SegmentSet, run: tuple[SegmentInfo, ...], level: int, whole: bool
    ) -> list[SegmentInfo]:
        with SegmentFiles(self.folder, self.serial(self.manifest), level) as files:
            merge(view, run, files, whole)
            return files.finish()

    def _own_files(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return [p.name for p in self.folder.iterdir() if OWN_FILE.fullmatch(p.name)]

    def _upgrade(self, legacy: Manifest) -> Manifest:
        """Rewrite a schema-1 store as segments with checksums, then publish its manifest."""
        view = open_segments(self.path, legacy)
        try:
            run = tuple(segment.info for segment in view.segments.values())
            built = self._merged(view, run, level=1, whole=True)
            new = replace(
                legacy, schema=SCHEMA_VERSION, generation=1,
                serial=self.serial(legacy, built), segments=tuple(built),
            )  # fmt: skip
            write_manifest(self.path, new)
        except (OSError, RuntimeError) as exc:
            raise write_failure(exc, f"upgrade store {self.path}", "it is unchanged") from exc
        finally:
            view.close()
        warnings.warn(
            f"store {self.path} upgraded from schema {LEGACY_SCHEMA} to {SCHEMA_VERSION}: "
            f"{len(view.index.tracks)} tracks rewritten with checksums into "
            f"{self.folder.name}/ (older clmr-embed versions cannot read it)",
            stacklevel=6,
        )
        return new

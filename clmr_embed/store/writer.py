"""The store's single writer: journaled changes published as new segments and a new manifest."""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from clmr_embed.errors import StoreError
from clmr_embed.pooling import track_mean
from clmr_embed.roots import LibraryRoot, merge_roots
from clmr_embed.store.changes import JournaledChanges
from clmr_embed.store.failures import write_failure
from clmr_embed.store.journal import Arrays, Journal
from clmr_embed.store.layout import StoreHeader, TrackRecord
from clmr_embed.store.lock import StoreLock, writable_path
from clmr_embed.store.manifest import Manifest, describe_file, merge_provenance, read_manifest
from clmr_embed.store.published import PublishedStore, SegmentFiles
from clmr_embed.store.segment import SegmentBuilder, SegmentInfo

KEPT = "finished tracks are kept in the journal; rerun to merge them"


def _apply(builder: SegmentBuilder, meta: dict[str, Any], arrays: Arrays) -> None:
    """Add one journal entry (the final state of its key) to the segment being built."""
    kind = meta["kind"]
    if kind == "track":
        emb = arrays["embeddings"]
        data = {"embeddings": emb, "starts_s": arrays["starts_s"], "mean": track_mean(emb)}
        builder.put_track(meta["track_id"], meta["attrs"], data)
    elif kind == "alias":
        builder.put_alias(meta["track_id"], meta["attrs"])
    elif kind == "remove":
        builder.remove(meta["track_id"])
    elif kind == "error":
        builder.set_error(meta["relpath"], meta["reason"])
    else:  # clear_error
        builder.clear_error(meta["relpath"])


class StoreWriter(JournaledChanges):
    """Journals finished tracks durably and publishes them as a new segment on commit().

    Every change is first an atomic journal file, so a killed writer loses nothing finished.
    commit() writes the changes into new immutable segment files, then replaces the small
    manifest by one rename: the store on disk is always a complete old or new version, and a
    commit costs what changed, never a copy of the store. The view and the other changes
    (tracks, is_current, find_content, add_alias, remove, add_error, clear_error, pending)
    come from JournaledChanges. Use it from one thread.
    """

    def __init__(self, path: Path, header: StoreHeader, lock: StoreLock) -> None:
        journal = Journal(path.with_name(path.name + ".journal"))
        super().__init__(journal, header.fingerprint(), (header.legacy_fingerprint(),))
        self.path = path  # the real path: symlinks resolved
        self.header = header
        self._lock = lock
        self._store = PublishedStore(path, header)  # what commits build on
        self._fresh = False  # a --force run whose new store replaces the old one at commit
        self._closed = False
        self._roots: tuple[LibraryRoot, ...] = ()  # this run's library folders (record_roots)
        self._shards: tuple[dict[str, Any], ...] = ()  # stores merged in by this run
        self.last_commit_s = 0.0  # seconds the last commit took
        self.last_commit_bytes = 0  # bytes it wrote (segments, catalogs, manifest)

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def generation(self) -> int:
        """The published manifest's generation (+1 per commit)."""
        return self._store.manifest.generation

    @property
    def segments(self) -> int:
        """How many segment files the published store has."""
        return len(self._store.manifest.segments)

    def add_track(self, record: TrackRecord) -> None:
        """Journal an embedded track, replacing any track or alias with the same id.

        Raises:
            ValueError: bad id, or embeddings not (n_windows >= 1, embedding_dim) with
                starts_s (n_windows,).
        """
        emb = np.ascontiguousarray(record.embeddings, dtype=np.float32)
        starts = np.ascontiguousarray(record.starts_s, dtype=np.float32)
        dim = self.header.embedding_dim
        if emb.ndim != 2 or len(emb) < 1 or emb.shape[1] != dim or starts.shape != emb.shape[:1]:
            raise ValueError(
                f"track {record.track_id}: embeddings {emb.shape} and starts_s {starts.shape} "
                f"must be (n_windows >= 1, {dim}) and (n_windows,)"
            )
        attrs = {
            "relpath": record.relpath,
            "content_sha256": record.content_sha256,
            "duration_s": float(record.duration_s),
            "source_rate": int(record.source_rate),
            "channels": int(record.channels),
            "n_windows": len(emb),
            "flags": list(record.flags),
            "alias_of": "",
        }
        self._put_track(record.track_id, attrs, {"embeddings": emb, "starts_s": starts})

    def record_roots(self, roots: Iterable[LibraryRoot]) -> None:
        """Record folders this run's relpaths are under (`Scan.roots`), at the next commit.

        Roots recorded earlier in the run come first, then earlier runs' (see `merge_roots`);
        a forced new store keeps only this run's. `clmr-embed serve` finds the audio under them.
        """
        self._roots = merge_roots(self._roots, tuple(roots))

    def record_shards(self, records: Iterable[dict[str, Any]]) -> None:
        """Record the provenance of stores merged into this one (`merge_into`), at the next
        commit, after the earlier ones (a shard merged again keeps its newest record)."""
        self._shards = merge_provenance(tuple(records), self._shards)

    def damaged(self) -> dict[str, str]:
        """Committed tracks whose arrays fail their checksum or cannot be read: id -> reason."""
        return self._store.view.verify()

    def commit(self) -> None:
        """Publish the journal as new segments and a new manifest, then drop the entries.

        Raises:
            DiskFullError: the disk or quota is full (StoreError for other write failures);
                the journal still holds everything.
        """
        if not self._pending and not self._fresh:
            self._publish_provenance()
            return
        names, began = sorted(self._pending), time.perf_counter()
        base = self._store.manifest
        if self._fresh:  # counters go on, so readers and caches see a change
            base = Manifest(self.header, generation=base.generation, serial=base.serial)
        try:
            with SegmentFiles(self._store.folder, self._store.serial(base), level=0) as files:
                for name in names:
                    loaded = self._journal.read(name)
                    if loaded is not None:
                        _apply(files.room(), *loaded)
                built = files.finish()
            new = replace(
                base, generation=base.generation + 1, serial=files.serial,
                segments=base.segments + tuple(built), roots=merge_roots(self._roots, base.roots),
                shards=merge_provenance(self._shards, base.shards),
            )  # fmt: skip
            written = sum(info.size for info in built) + self._store.publish(new, self._fresh)
        except (OSError, RuntimeError) as exc:
            raise write_failure(exc, f"commit store {self.path}", KEPT) from exc
        if self._fresh:
            # before deleting entries: a marker left after them would rebuild from an empty store
            self._journal.remove_marker()
            self._fresh = False
        self._journal.delete(names)
        for name in names:
            del self._pending[name]
        self.last_commit_bytes = written + self._store.merge_tail()
        self.last_commit_s = time.perf_counter() - began

    def _publish_provenance(self) -> None:
        try:
            self._store.add_provenance(self._roots, self._shards)
        except (OSError, RuntimeError) as exc:
            raise write_failure(exc, f"commit store {self.path}", KEPT) from exc

    def adopt_segments(self, source: Path, infos: Sequence[SegmentInfo]) -> bool:
        """Commit, then publish another store's segments (in `source`) as this store's newest,
        copied whole: its tracks, aliases and errors, without reading a track. For a store that
        shares no track id, content or path with this one (`merge_into` checks). False when a
        segment fails its sha256 (nothing adopted).
        """
        self.commit()
        try:
            written = self._store.adopt(source, infos)
        except (OSError, RuntimeError) as exc:
            raise write_failure(exc, f"merge into store {self.path}", "it is unchanged") from exc
        if written is None:
            return False
        index = self._store.view.index  # the adopted tracks are in it now
        for tid, attrs in index.tracks.items():
            if tid not in self._tracks:
                self._set(tid, attrs)
        self._errors = dict(index.errors)
        self.last_commit_bytes = written
        return True

    def compact(self) -> int:
        """Commit, then merge every segment into as few as possible; bytes written."""
        self.commit()
        if not self._store.manifest.segments:
            return 0
        try:
            return self._store.merge(0)
        except (OSError, RuntimeError) as exc:
            raise write_failure(exc, f"compact store {self.path}", "it is unchanged") from exc

    def close(self) -> None:
        """Commit what is journaled and release the lock (idempotent)."""
        if self._closed:
            return
        try:
            self.commit()
            self._journal.remove_if_empty()
        finally:
            self._closed = True
            self._store.close()
            self._lock.release()

    def _write_entry(self, name: str, meta: dict[str, Any], arrays: Arrays | None = None) -> None:
        if self._closed:
            raise StoreError(f"the writer of store {self.path} is closed; open a new one")
        super()._write_entry(name, meta, arrays)

    def _committed_arrays(self, track_id: str) -> Arrays:
        return self._store.view.arrays(track_id, ("embeddings", "starts_s"))

    def _start(self, force: bool) -> None:
        """Pick the base store (existing, new, or --force), then merge any leftover journal."""
        self._journal.clean_temp()
        self._remove_stale_copies()
        marker = self._journal.read_marker()
        if force:
            what = describe_file(self.path)
            if what:
                raise StoreError(
                    f"{self.path} is {what}; the force option only replaces clmr-embed stores: "
                    "delete it yourself or use another output file"
                )
            self._journal.clear()
            self._begin_new()
        elif marker in self._accepted:
            self._begin_new(resumed=True)  # a --force run killed before its first commit
        else:
            if marker is not None:
                self._warn(
                    len(self._journal.names()), "an interrupted --force run with another model"
                )
                self._journal.clear()
            if self.path.exists():
                self._load_committed(read_manifest(self.path))
            else:
                self._begin_new()
        self._warn(self.replay(), "another model")
        if self._pending:
            self.commit()

    def _remove_stale_copies(self) -> None:
        """Delete copies a killed commit left (atomic_path's temp files; older <store>.tmp)."""
        for stale in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            stale.unlink(missing_ok=True)
        self.path.with_name(self.path.name + ".tmp").unlink(missing_ok=True)

    def _warn(self, dropped: int, why: str) -> None:
        if dropped:
            warnings.warn(
                f"store {self.path}: dropped {dropped} journaled changes of {why}", stacklevel=4
            )

    def _begin_new(self, resumed: bool = False) -> None:
        if self.path.exists():  # keep the old store until the new one is committed
            with contextlib.suppress(StoreError):  # damaged: replaced all the same
                self._store.manifest = read_manifest(self.path)  # its counters go on
            if not resumed:
                self._journal.write_marker(self._fp)
            self._fresh = True
            return
        try:  # an empty store at once, so the file exists from the start
            self._store.publish(Manifest(self.header), whole=True)
        except (OSError, RuntimeError) as exc:
            raise write_failure(exc, f"create store {self.path}") from exc

    def _load_committed(self, manifest: Manifest) -> None:
        old = manifest.header
        if old.fingerprint() != self._fp:
            raise StoreError(
                f"store {self.path} was made with {old.describe(self.header)}; "
                f"this run uses {self.header.describe(old)}; "
                "use another output file, or start it over with the force option"
            )
        for name in ("preprocessing", "engine"):  # another precision changes the fingerprint
            if getattr(old, name) != getattr(self.header, name):
                warnings.warn(
                    f"store {self.path} was made with {name} {getattr(old, name)}; this run "
                    f"uses {getattr(self.header, name)}; force a new store to re-embed "
                    "everything alike",
                    stacklevel=4,
                )
        self._store.load(manifest)
        for tid, attrs in self._store.view.index.tracks.items():
            self._set(tid, attrs)
        self._errors = dict(self._store.view.index.errors)


def open_writer(path: Path, header: StoreHeader, *, force: bool = False) -> StoreWriter:
    """Lock a store for writing, creating it, upgrading a schema-1 one or recovering its journal.

    Args:
        path: the .h5 store (through a symlink: its target); `<path>.lock`, `<path>.journal/`
            and the segment folder `<path>.d/` sit beside it.
        header: this run's model and preprocessing.
        force: start a new empty store; the old one (a clmr-embed store only) is replaced at
            the first commit.

    Raises:
        StoreError: another writer holds the lock, the store is read-only, was made with
            another model, hop or embedding dim, or is not a clmr-embed store.
    """
    real = writable_path(Path(path))
    lock = StoreLock(real)
    lock.acquire()
    writer = StoreWriter(real, header, lock)
    try:
        writer._start(force)
    except BaseException:
        writer._store.close()
        lock.release()
        raise
    return writer

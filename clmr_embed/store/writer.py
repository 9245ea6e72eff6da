"""The store's single writer: journaled tracks merged by atomic copy-on-write commits."""

from __future__ import annotations

import json
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from clmr_embed.atomic import atomic_path
from clmr_embed.errors import StoreError
from clmr_embed.pooling import track_mean
from clmr_embed.store.changes import JournaledChanges
from clmr_embed.store.journal import Arrays, Journal, error_key
from clmr_embed.store.layout import (
    SCHEMA_VERSION,
    StoreHeader,
    TrackRecord,
    create_empty,
    open_h5,
    read_header,
    read_index,
    timestamp,
    write_catalog,
)
from clmr_embed.store.lock import StoreLock


def _apply(f: h5py.File, meta: dict[str, Any], arrays: Arrays) -> None:
    """Apply one journal entry; it sets a key to a state, so applying it twice is harmless."""
    kind = meta["kind"]
    if kind in ("track", "alias", "remove"):
        group, key = f["tracks"], meta["track_id"]
    else:
        group, key = f["errors"], error_key(meta["relpath"])
    if key in group:
        del group[key]
    if kind in ("remove", "clear_error"):
        return
    new = group.create_group(key)
    if kind == "error":
        new.attrs.update({"relpath": meta["relpath"], "reason": meta["reason"]})
        return
    attrs = dict(meta["attrs"], flags=json.dumps(list(meta["attrs"]["flags"])))
    new.attrs.update(attrs)
    if kind == "track":
        emb = arrays["embeddings"]
        new.create_dataset("embeddings", data=emb)
        new.create_dataset("starts_s", data=arrays["starts_s"])
        new.create_dataset("mean", data=track_mean(emb))


class StoreWriter(JournaledChanges):
    """Journals finished tracks durably and merges them into the store on commit().

    Every change is first an atomic journal file, so a killed writer loses nothing finished;
    commit() rewrites a copy of the store and renames it into place, so the store on disk is
    always a complete old or new version. The view and the other changes (tracks, is_current,
    find_content, add_alias, remove, add_error, clear_error, pending) come from
    JournaledChanges. Use it from one thread.
    """

    def __init__(self, path: Path, header: StoreHeader, lock: StoreLock) -> None:
        super().__init__(Journal(path.with_name(path.name + ".journal")), header.fingerprint())
        self.path = path
        self.header = header
        self._lock = lock
        self._fresh = False  # a --force run whose new store replaces the old one at commit
        self._closed = False
        self.last_commit_s = 0.0  # seconds the last commit took (it grows with the store)

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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

    def commit(self) -> None:
        """Merge the journal into the store: copy, apply, fsync, rename, then drop the entries."""
        if not self._pending and not self._fresh:
            return
        names, began = sorted(self._pending), time.perf_counter()
        try:
            # a copy, published by one rename: the store on disk is the old or the new version
            with atomic_path(self.path) as tmp:
                if self._fresh or not self.path.exists():
                    create_empty(tmp, self.header)
                else:
                    shutil.copyfile(self.path, tmp)
                with open_h5(tmp, "r+") as f:
                    for name in names:
                        loaded = self._journal.read(name)
                        if loaded is not None:
                            _apply(f, *loaded)
                    write_catalog(f, self._tracks, self._errors)
                    f.attrs["updated"] = timestamp()
        except OSError as exc:  # e.g. a full disk; the journal still holds everything
            raise StoreError(
                f"cannot commit store {self.path} ({exc.strerror}); free disk space and "
                "rerun: finished tracks are kept in the journal"
            ) from exc
        if self._fresh:
            # before deleting entries: a marker left after them would rebuild from an empty store
            self._journal.remove_marker()
            self._fresh = False
        self._journal.delete(names)
        for name in names:
            del self._pending[name]
        self.last_commit_s = time.perf_counter() - began

    def close(self) -> None:
        """Commit what is journaled and release the lock (idempotent)."""
        if self._closed:
            return
        try:
            self.commit()
            self._journal.remove_if_empty()
        finally:
            self._closed = True
            self._lock.release()

    def _write_entry(self, name: str, meta: dict[str, Any], arrays: Arrays | None = None) -> None:
        if self._closed:
            raise StoreError(f"the writer of store {self.path} is closed; open a new one")
        super()._write_entry(name, meta, arrays)

    def _committed_arrays(self, track_id: str) -> Arrays:
        with open_h5(self.path, "r") as f:
            group = f["tracks"][track_id]
            return {"embeddings": group["embeddings"][()], "starts_s": group["starts_s"][()]}

    def _start(self, force: bool) -> None:
        """Pick the base store (existing, new, or --force), then merge any leftover journal."""
        self._journal.clean_temp()
        self._remove_stale_copies()
        marker = self._journal.read_marker()
        if force:
            self._journal.clear()
            self._begin_new()
        elif marker == self._fp:
            self._fresh = True  # resume a --force run killed before its first commit
        else:
            if marker is not None:
                self._warn(
                    len(self._journal.names()), "an interrupted --force run with another model"
                )
                self._journal.clear()
            if self.path.exists():
                self._load_committed()
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

    def _begin_new(self) -> None:
        if self.path.exists():  # keep the old store until the new one is committed
            self._journal.write_marker(self._fp)
            self._fresh = True
        else:  # write an empty store atomically, so the file exists from the start
            with atomic_path(self.path) as tmp:
                create_empty(tmp, self.header)

    def _load_committed(self) -> None:
        with open_h5(self.path, "r") as f:
            schema, old = read_header(f, self.path)
            if old.fingerprint(schema) != self._fp:
                schema_note = f", schema {schema}" if schema != SCHEMA_VERSION else ""
                raise StoreError(
                    f"store {self.path} was made with {old.describe(self.header)}{schema_note}; "
                    f"this run uses {self.header.describe(old)}; "
                    "use another output file, or start it over with the force option"
                )
            tracks, self._errors = read_index(f)
        if old.preprocessing != self.header.preprocessing:
            warnings.warn(
                f"store {self.path} was made with preprocessing {old.preprocessing}; this run "
                f"uses {self.header.preprocessing}; force a new store to re-embed everything alike",
                stacklevel=4,
            )
        for tid, attrs in tracks.items():
            self._set(tid, attrs)


def open_writer(path: Path, header: StoreHeader, *, force: bool = False) -> StoreWriter:
    """Lock a store for writing, creating it or recovering its journal first.

    Args:
        path: the .h5 store; `<path>.lock`, `<path>.journal/` and, during a commit, a hidden
            temp copy `.<name>.*.tmp` sit beside it.
        header: this run's model and preprocessing.
        force: start a new empty store; the old file is replaced at the first commit.

    Raises:
        StoreError: another writer holds the lock, or the store was made with another model,
            hop, embedding dim or schema, or is not a clmr-embed store.
    """
    path = Path(path)
    lock = StoreLock(path)
    lock.acquire()
    writer = StoreWriter(path, header, lock)
    try:
        writer._start(force)
    except BaseException:
        lock.release()
        raise
    return writer

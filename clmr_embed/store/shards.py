"""Merging stores of one model into one: every shard's tracks and errors once, provenance kept."""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from clmr_embed.errors import StoreDamagedError, StoreError
from clmr_embed.progress import Progress
from clmr_embed.store.layout import SCHEMA_VERSION, StoreHeader, TrackRecord, timestamp
from clmr_embed.store.manifest import read_manifest
from clmr_embed.store.reader import EmbeddingStore, open_store
from clmr_embed.store.segment import segment_folder
from clmr_embed.store.writer import StoreWriter, open_writer

# Tracks journaled between commits: each is durable once journaled, so this only bounds the
# journal's size (one file per track) and how often readers see the store grow.
COMMIT_EVERY = 500


@dataclass
class MergeReport:
    """What a merge did, shard by shard summed up."""

    store: str  # the merged store
    shards: list[str]  # the shard stores, in the order merged
    merged: int = 0  # tracks whose embeddings were copied in
    aliased: int = 0  # tracks whose content was already in: stored as aliases (no copy)
    unchanged: int = 0  # already in the store with the same content (a rerun, or a repeat)
    replaced: int = 0  # of `merged`: an earlier shard's track of the same path, other content
    failed: int = 0  # files a shard recorded as failed, carried over (extract retries them)
    copied_segments: int = 0  # of shards sharing nothing with the store: copied whole
    damaged: list[tuple[str, str]] = field(default_factory=list)  # (relpath, reason)
    wall_s: float = 0.0

    @property
    def exit_code(self) -> int:
        """1 when a shard's track could not be read (recorded as failed, to re-extract)."""
        return 1 if self.damaged else 0

    def to_dict(self) -> dict[str, Any]:
        """The `--json` object: the fields, damaged tracks as objects, and the exit code."""
        damaged = [{"relpath": p, "reason": r} for p, r in self.damaged]
        return asdict(self) | {"damaged": damaged, "wall_s": round(self.wall_s, 3),
                               "exit_code": self.exit_code}  # fmt: skip


def merge_stores(
    shards: Sequence[Path], out: Path, progress: Progress | None = None
) -> MergeReport:
    """Merge the shard stores into `out` (created, or added to): one store, nothing twice.

    Every shard must be of one model, hop and precision (and `out`, if it exists). A track
    already in `out` with the same content is skipped, one whose content is there under
    another path becomes an alias, and a later shard's track replaces an earlier one of the
    same path. Each track is journaled before the next is read, so a killed merge resumes
    where it stopped when run again; the shards are only read.

    Raises:
        StoreError: a shard is missing or not a store, `out` is one of the shards, or the
            stores were made with different models (the message names the difference).
    """
    began = time.perf_counter()
    paths = _distinct(shards, out)
    stores = [open_store(path) for path in paths]
    try:
        _check_alike(stores, out)
        with open_writer(out, stores[0].header) as writer:
            report = merge_into(writer, stores, progress)
    finally:
        for store in stores:
            store.close()
    report.wall_s = time.perf_counter() - began
    return report


def merge_into(
    writer: StoreWriter, stores: Sequence[EmbeddingStore], progress: Progress | None = None
) -> MergeReport:
    """Journal the open shard stores into an open writer (`merge_stores` without the opening).

    Raises:
        StoreError: a shard was made with another model, hop or precision than the writer's.
    """
    began = time.perf_counter()
    for store in stores:
        _refuse_unlike(f"shard {store.path}", store.header, f"store {writer.path}", writer.header)
    report = MergeReport(str(writer.path), [str(store.path) for store in stores])
    if progress is not None:
        progress.start(sum(len(store) for store in stores))
    for store in stores:
        _merge_one(store, writer, report, progress)
    report.failed = _carry_errors(stores, writer)
    writer.record_roots(root for store in stores for root in store.roots)
    writer.record_shards(_provenance(store) for store in stores)
    report.wall_s = time.perf_counter() - began
    return report


def _distinct(shards: Sequence[Path], out: Path) -> list[Path]:
    """The shards' paths, each once; `out` must not be among them."""
    real_out = os.path.realpath(out)
    seen: dict[str, Path] = {}
    for path in shards:
        real = os.path.realpath(path)
        if real == real_out:
            raise StoreError(f"{out} is one of the shards; give a new or another output store")
        seen.setdefault(real, Path(path))
    if not seen:
        raise StoreError("no shard stores to merge; give SHARD... OUT")
    return list(seen.values())


def _check_alike(stores: list[EmbeddingStore], out: Path) -> None:
    """Refuse stores whose embeddings are not comparable, naming the first difference."""
    first = stores[0]
    others: list[tuple[str, StoreHeader]] = [(f"shard {s.path}", s.header) for s in stores[1:]]
    if Path(out).exists():
        others.append((f"the output store {out}", read_manifest(Path(out)).header))
    for name, header in others:
        _refuse_unlike(name, header, f"shard {first.path}", first.header)
        if header.preprocessing != first.header.preprocessing:
            warnings.warn(
                f"{name} was decoded with {header.preprocessing}, shard {first.path} with "
                f"{first.header.preprocessing}; their embeddings may differ slightly",
                stacklevel=3,
            )


def _refuse_unlike(name: str, header: StoreHeader, other: str, other_header: StoreHeader) -> None:
    """StoreError naming the difference when two stores' embeddings are not comparable."""
    if header.fingerprint() != other_header.fingerprint():
        raise StoreError(
            f"{name} was made with {header.describe(other_header)} and {other} with "
            f"{other_header.describe(header)}; merge only stores of one model, hop and precision"
        )


def _merge_one(
    shard: EmbeddingStore, writer: StoreWriter, report: MergeReport, progress: Progress | None
) -> None:
    """Journal one shard's tracks (embedded ones first: aliases need their twin), or copy its
    segments whole when it shares no track id, content or path with the store (the common
    case: shards of disjoint parts of a library), which reads no track."""
    if _shares_nothing(shard, writer):
        folder = segment_folder(Path(os.path.realpath(shard.path)))
        if writer.adopt_segments(folder, shard.segments):
            report.copied_segments += len(shard.segments)
            for tid in shard.track_ids:
                attrs = shard.attrs(tid)
                report.aliased += bool(attrs["alias_of"])
                report.merged += not attrs["alias_of"]
                if progress is not None:
                    progress.advance(attrs["relpath"], float(attrs["duration_s"]))
            return
    known = set(writer.tracks)
    ids = sorted(shard.track_ids, key=lambda tid: bool(shard.attrs(tid)["alias_of"]))
    for tid in ids:
        attrs = shard.attrs(tid)
        outcome = _merge_track(shard, writer, tid, attrs)
        if isinstance(outcome, tuple):
            report.damaged.append(outcome)
        else:
            setattr(report, outcome, getattr(report, outcome) + 1)
            report.replaced += outcome == "merged" and tid in known
        known.add(tid)
        if writer.pending >= COMMIT_EVERY:
            writer.commit()
        if progress is not None:
            progress.advance(attrs["relpath"], float(attrs["duration_s"]))


def _carry_errors(stores: Sequence[EmbeddingStore], writer: StoreWriter) -> int:
    """Record the shards' failed files (the last shard's reason wins); how many.

    A path some shard embedded is not a failure: each shard saw only part of the library.
    """
    stored = {track.relpath for track in writer.tracks.values()}
    failed = {p: r for store in stores for p, r in store.errors.items() if p not in stored}
    for relpath, reason in failed.items():
        writer.add_error(relpath, reason)
    for relpath in stored.intersection(writer.errors):  # from a shard copied whole
        writer.clear_error(relpath)
    return len(failed)


def _shares_nothing(shard: EmbeddingStore, writer: StoreWriter) -> bool:
    """True for a segmented shard with no track id, content or path (failed ones too) that the
    store has: its segments then say nothing that the store's newer state must override."""
    if shard.schema_version != SCHEMA_VERSION or not shard.segments:
        return False
    stored = writer.tracks
    contents = {track.content_sha256 for track in stored.values()}
    paths = {track.relpath for track in stored.values()} | set(writer.errors)
    if not paths.isdisjoint(shard.errors):
        return False
    for tid in shard.track_ids:
        attrs = shard.attrs(tid)
        if tid in stored or attrs["content_sha256"] in contents or attrs["relpath"] in paths:
            return False
    return True


def _merge_track(
    shard: EmbeddingStore, writer: StoreWriter, tid: str, attrs: dict[str, Any]
) -> str | tuple[str, str]:
    """Journal one track; the MergeReport count it adds to, or (relpath, reason) if damaged."""
    content, relpath = attrs["content_sha256"], attrs["relpath"]
    if writer.is_current(tid, content):
        return "unchanged"
    twin = writer.find_content(content)
    if twin is not None:
        writer.add_alias(tid, relpath, content, twin)
        return "aliased"
    try:
        embeddings, starts = shard.embeddings(tid), shard.starts_s(tid)
    except StoreDamagedError as exc:  # a bad chunk, or an alias whose twin was damaged
        reason = f"{relpath}: damaged in shard {shard.path} ({exc}); rerun clmr-embed extract"
        writer.add_error(relpath, reason)
        return relpath, reason
    record = TrackRecord(
        tid, relpath, content, float(attrs["duration_s"]), int(attrs["source_rate"]),
        int(attrs["channels"]), embeddings, starts, tuple(attrs["flags"]),
    )  # fmt: skip
    writer.add_track(record)
    return "merged"


def _provenance(shard: EmbeddingStore) -> dict[str, Any]:
    """What the merged store remembers of a shard (its own shards' records nested)."""
    return {
        "path": os.path.realpath(shard.path),
        "created": shard.created,
        "generation": shard.generation,
        "tracks": len(shard),
        "errors": len(shard.errors),
        "preprocessing": shard.header.preprocessing,
        "engine": shard.header.engine,
        "merged": timestamp(),
        "shards": list(shard.shards),
    }

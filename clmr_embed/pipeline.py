"""The extract pipeline: decode workers feed windows, packed into full batches, into the store."""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing import connection as mp_connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from clmr_embed.decoder import DecodeJob, Message, TrackMeta, decode_track, worker_main
from clmr_embed.model import OnnxModel
from clmr_embed.plan import PlannedTrack
from clmr_embed.store import StoreWriter, TrackRecord

if TYPE_CHECKING:
    from clmr_embed.extract import ExtractConfig, ExtractSummary, Progress


@dataclass
class _Track:
    """A track in flight: its windows' embeddings arrive in order, batch by batch."""

    planned: PlannedTrack
    embeddings: list[np.ndarray] = field(default_factory=list)
    starts: list[np.ndarray] = field(default_factory=list)
    queued: int = 0  # windows waiting in the batch buffer
    meta: TrackMeta | None = None
    started: bool = False


class _Trace:
    def __init__(self, path: Path | None) -> None:
        self.handle = open(path, "a", buffering=1) if path else None  # noqa: SIM115

    def write(self, event: str, track_id: str) -> None:
        if self.handle:
            self.handle.write(f"{event} {track_id}\n")
            self.handle.flush()
            os.fsync(self.handle.fileno())


@dataclass
class _Worker:
    """A decode process, the read end of its own result pipe, and the job it is on."""

    process: Any
    conn: Any
    job: int | None = None


def _start_worker(ctx: Any, job_q: Any) -> _Worker:
    reader, writer = ctx.Pipe(duplex=False)
    process = ctx.Process(target=worker_main, args=(job_q, writer), daemon=True)
    process.start()
    writer.close()  # the child holds its copy; EOF on `reader` now means the child is gone
    return _Worker(process, reader)


def _crash_message(worker: _Worker, jobs: dict[int, DecodeJob]) -> Message:
    worker.process.join()
    code = worker.process.exitcode
    reason = (
        f"{jobs[worker.job].path}: the decoder crashed on this file (exit code {code}); "  # type: ignore[index]
        "it is probably malformed, re-encode it"
    )
    return ("error", worker.job, reason, None)  # type: ignore[return-value]


def _messages(jobs: list[DecodeJob], workers: int) -> Iterator[Message | None]:
    """Decode messages in arrival order; None means 'nothing ready right now'.

    Each worker sends on its own pipe. A worker that dies (a decoder segfault, an OOM kill) fails
    only the file it was decoding and is replaced, so one malformed file never stops a run.
    """
    if workers <= 0:
        for job in jobs:
            yield from decode_track(job)
        return
    ctx = mp.get_context("spawn")
    job_q: Any = ctx.Queue()
    for job in jobs:
        job_q.put(job)
    for _ in range(workers):
        job_q.put(None)
    by_index = {job.index: job for job in jobs}
    pool = [_start_worker(ctx, job_q) for _ in range(workers)]
    done: set[int] = set()  # jobs with a done/error message
    try:
        while len(done) < len(jobs) and pool:
            ready = mp_connection.wait([w.conn for w in pool], timeout=0.05)
            if not ready:
                yield None
                continue
            for worker in [w for w in pool if w.conn in ready]:
                try:
                    message = worker.conn.recv()
                except (EOFError, OSError):  # the process is gone
                    pool.remove(worker)
                    if worker.job is not None and worker.job not in done:
                        done.add(worker.job)
                        yield _crash_message(worker, by_index)
                        pool.append(_start_worker(ctx, job_q))  # takes over its sentinel
                    continue
                kind, index = message[0], message[1]
                if kind == "start":
                    worker.job = index
                    continue
                if kind != "windows":
                    done.add(index)
                    worker.job = None
                yield message
        for index in sorted(set(by_index) - done):  # cannot happen unless workers vanish
            yield ("error", index, f"{by_index[index].path}: not decoded (workers exited)", None)
    finally:
        for worker in pool:
            worker.process.kill()
            worker.process.join()


class Pipeline:
    """Packs windows of many files into full batches and writes finished tracks to the store."""

    def __init__(
        self,
        model: OnnxModel,
        store: StoreWriter,
        config: ExtractConfig,
        summary: ExtractSummary,
        progress: Progress | None = None,
    ) -> None:
        self.model = model
        self.store = store
        self.config = config
        self.summary: ExtractSummary = summary
        self.tracks: dict[int, _Track] = {}
        self.buffer: deque[tuple[int, np.ndarray, np.ndarray]] = deque()  # (index, windows, starts)
        self.buffered = 0
        self.since_commit = 0
        self.last_commit = time.perf_counter()
        self.trace = _Trace(config.trace)
        self.progress = progress

    def run(self, todo: list[PlannedTrack], jobs: list[DecodeJob]) -> None:
        self.tracks = {job.index: _Track(todo[job.index]) for job in jobs}
        for message in _messages(jobs, self.config.workers):
            if message is None:
                if self._waiting_on_buffer():
                    self._flush(partial=True)
                continue
            kind, index, payload, extra = message
            track = self.tracks[index]
            if kind == "windows":
                self.buffer.append((index, payload, extra))
                self.buffered += len(payload)
                track.queued += len(payload)
                self._flush(partial=False)
            elif kind == "done":
                track.meta = payload
                if self.config.workers <= 0 or self._waiting_on_buffer():
                    self._flush(partial=True)
                self._maybe_finish(index)
            else:
                self._fail(index, payload)
        self._flush(partial=True)

    def _waiting_on_buffer(self) -> bool:
        return any(t.meta is not None and t.queued for t in self.tracks.values())

    def _flush(self, partial: bool) -> None:
        size = self.config.batch_size
        while self.buffered >= size or (partial and self.buffered):
            take, parts = min(size, self.buffered), []
            while take:
                index, windows, starts = self.buffer[0]
                n = min(take, len(windows))
                parts.append((index, windows[:n], starts[:n]))
                if n == len(windows):
                    self.buffer.popleft()
                else:
                    self.buffer[0] = (index, windows[n:], starts[n:])
                take -= n
            self._run_batch(parts)

    def _run_batch(self, parts: list[tuple[int, np.ndarray, np.ndarray]]) -> None:
        for index, _, _ in parts:
            track = self.tracks[index]
            if not track.started:
                track.started = True
                self.trace.write("start", track.planned.track_id)
        embeddings, _ = self.model.run(np.concatenate([w for _, w, _ in parts]))
        offset = 0
        for index, windows, starts in parts:
            track = self.tracks[index]
            track.embeddings.append(embeddings[offset : offset + len(windows)])
            track.starts.append(starts)
            track.queued -= len(windows)
            self.buffered -= len(windows)
            offset += len(windows)
        for index in {index for index, _, _ in parts}:
            self._maybe_finish(index)

    def _maybe_finish(self, index: int) -> None:
        track = self.tracks.get(index)
        if track is None or track.meta is None or track.queued:
            return
        meta, planned = track.meta, track.planned
        flags = (["short"] if meta.padded else []) + (["silent"] if meta.silent else [])
        rate = self.model.info.sample_rate
        record = TrackRecord(
            track_id=planned.track_id,
            relpath=planned.file.relpath,
            content_sha256=planned.content,
            duration_s=meta.duration_s,
            source_rate=meta.source_rate,
            channels=meta.channels,
            embeddings=np.concatenate(track.embeddings).astype(np.float32),
            starts_s=(np.concatenate(track.starts) / rate).astype(np.float32),
            flags=tuple(flags),
        )
        self.store.add_track(record)
        self.store.clear_error(planned.file.relpath)
        self.trace.write("done", planned.track_id)
        del self.tracks[index]
        self.summary.embedded += 1
        self.summary.audio_seconds += meta.duration_s
        if flags:
            self.summary.flagged.append((planned.file.relpath, flags))
        self._after_track(planned.file.relpath, meta.duration_s)

    def _fail(self, index: int, reason: str) -> None:
        track = self.tracks.pop(index)
        if track.queued:  # drop its windows still waiting for the model
            kept = [item for item in self.buffer if item[0] != index]
            self.buffered -= track.queued
            self.buffer = deque(kept)
        self.store.add_error(track.planned.file.relpath, reason)
        self.summary.failed.append((track.planned.file.relpath, reason))
        self._after_track(track.planned.file.relpath, 0.0)

    def _after_track(self, relpath: str, seconds: float) -> None:
        self.since_commit += 1
        # A commit copies the whole store (copy-on-write), so its cost grows with the store: commit
        # every N tracks, or when 10x the last commit's time has passed (at most ~10% overhead).
        # Finished tracks are safe in the journal either way.
        waited = time.perf_counter() - self.last_commit
        due = waited >= max(30.0, 10 * self.store.last_commit_s)
        if self.since_commit >= self.config.commit_every or due:
            self.store.commit()
            self.since_commit = 0
            self.last_commit = time.perf_counter()
        if self.progress:
            self.progress.advance(relpath, seconds)

"""Decode workers: processes that turn files into window messages, and the pool that runs them."""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing import connection as mp_connection
from pathlib import Path
from typing import Any

from clmr_embed.audio import WindowStream
from clmr_embed.errors import AudioDecodeError
from clmr_embed.extract.messages import (
    Decoded,
    DecodeJob,
    Failed,
    Message,
    Started,
    Windows,
)

CRASH_TEST_ENV = "CLMR_EMBED_TEST_CRASH_ON"  # tests: a worker exits abruptly on paths containing it


def decode_track(job: DecodeJob) -> Iterator[Windows | Decoded | Failed]:
    """Decode one file into window chunks and a Decoded message; a bad file ends in Failed."""
    try:
        stream = WindowStream(
            Path(job.path), job.spec, chunk_windows=job.chunk_windows, decoder=job.decoder
        )
        for chunk in stream:
            yield Windows(job.index, chunk.windows, chunk.starts)
        yield Decoded(job.index, stream.decoded)
    except AudioDecodeError as exc:
        yield Failed(job.index, str(exc))
    except Exception as exc:  # noqa: BLE001 - one broken file must never stop a library run
        yield Failed(job.index, f"{job.path}: {type(exc).__name__}: {exc}")


def worker_main(jobs: Any, results: Any) -> None:
    """Process entry point: decode jobs from `jobs` until a None sentinel arrives.

    `results` is this worker's own pipe end: `send` writes synchronously (no feeder thread), so
    Started reaches the parent before decoding begins, and a decoder that crashes the whole
    process (a malformed file can segfault FFmpeg) corrupts no channel but its own.
    """
    crash_on = os.environ.get(CRASH_TEST_ENV, "")  # test hook: simulate a decoder crash
    while True:
        try:
            job = jobs.get(timeout=1.0)
        except queue.Empty:
            continue
        if job is None:
            results.close()
            return
        results.send(Started(job.index, os.getpid()))
        if crash_on and crash_on in job.path:
            os._exit(70)
        for message in decode_track(job):
            results.send(message)


@dataclass
class _Worker:
    """A decode process, the read end of its own result pipe, and the job it is on."""

    process: Any
    conn: Any
    job: int | None = None


class _Pool:
    """Worker processes fed from one job queue; each answers on its own pipe."""

    def __init__(self, jobs: list[DecodeJob], workers: int) -> None:
        self.ctx = mp.get_context("spawn")
        self.queue: Any = self.ctx.Queue()
        for job in jobs:
            self.queue.put(job)
        for _ in range(workers):
            self.queue.put(None)  # one sentinel per worker
        self.jobs = {job.index: job for job in jobs}
        self.done: set[int] = set()  # jobs with a Decoded or Failed message
        self.workers = [self._start() for _ in range(workers)]

    def _start(self) -> _Worker:
        reader, writer = self.ctx.Pipe(duplex=False)
        process = self.ctx.Process(target=worker_main, args=(self.queue, writer), daemon=True)
        process.start()
        writer.close()  # the child holds its copy; EOF on `reader` now means the child is gone
        return _Worker(process, reader)

    def receive(self, worker: _Worker) -> Message | None:
        """The worker's next message; a dead worker fails its job and is replaced."""
        try:
            message: Message = worker.conn.recv()
        except (EOFError, OSError):  # the process is gone
            self.workers.remove(worker)
            if worker.job is None or worker.job in self.done:
                return None
            self.done.add(worker.job)
            self.workers.append(self._start())  # takes over its sentinel
            return self._crashed(worker, worker.job)
        if isinstance(message, Started):
            worker.job = message.job
            return None
        if not isinstance(message, Windows):
            self.done.add(message.job)
            worker.job = None
        return message

    def _crashed(self, worker: _Worker, index: int) -> Failed:
        worker.process.join()
        reason = (
            f"{self.jobs[index].path}: the decoder crashed on this file (exit code "
            f"{worker.process.exitcode}); it is probably malformed, re-encode it"
        )
        return Failed(index, reason)

    def close(self) -> None:
        for worker in self.workers:
            worker.process.kill()
            worker.process.join()


def decode_messages(jobs: list[DecodeJob], workers: int) -> Iterator[Message | None]:
    """Windows, Decoded and Failed messages in arrival order; None: nothing ready right now.

    `workers` 0 decodes in this process. Otherwise each worker sends on its own pipe, and a
    worker that dies (a decoder segfault, an OOM kill) fails only the file it was decoding and is
    replaced, so one malformed file never stops a run.
    """
    if workers <= 0:
        for job in jobs:
            yield from decode_track(job)
        return
    pool = _Pool(jobs, workers)
    try:
        while len(pool.done) < len(jobs) and pool.workers:
            ready = mp_connection.wait([w.conn for w in pool.workers], timeout=0.05)
            if not ready:
                yield None
            for worker in [w for w in pool.workers if w.conn in ready]:
                message = pool.receive(worker)
                if message is not None:
                    yield message
        for index in sorted(set(pool.jobs) - pool.done):  # cannot happen unless workers vanish
            yield Failed(index, f"{pool.jobs[index].path}: not decoded (workers exited)")
    finally:
        pool.close()

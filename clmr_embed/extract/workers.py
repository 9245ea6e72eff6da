"""Decode workers: processes that turn files into window messages, and the pool that runs them."""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import connection as mp_connection
from pathlib import Path
from typing import Any

from clmr_embed.audio import WindowStream
from clmr_embed.errors import AudioDecodeError
from clmr_embed.extract.handover import RunBlocks, WorkerBlocks
from clmr_embed.extract.messages import (
    Decoded,
    DecodeJob,
    Failed,
    Message,
    Started,
    Windows,
    WindowsIn,
)
from clmr_embed.names import shown

# Signals that mean the system or the user stopped the worker, not that the file broke it.
_STOPPED_BY = {int(signal.SIGKILL): "likely out of memory", int(signal.SIGTERM): "terminated"}

# Turns one job into its messages. A worker process runs it, so it must be picklable: a
# module-level function (decode_track; tests pass their own to simulate crashing decoders).
DecodeFn = Callable[[DecodeJob], Iterator[Windows | Decoded | Failed]]


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
    except Exception as exc:  # any error: one broken file must never stop a library run
        first_line = str(exc).splitlines()[0] if str(exc) else ""
        yield Failed(job.index, shown(f"{job.path}: {type(exc).__name__}: {first_line}"))


def worker_main(jobs: Any, results: Any, decode: DecodeFn = decode_track, free: Any = None) -> None:
    """Process entry point: decode jobs from `jobs` with `decode` until a None sentinel arrives.

    `results` is this worker's own pipe end: `send` writes synchronously (no feeder thread), so
    Started reaches the parent before decoding begins, and a decoder that crashes the whole
    process (a malformed file can segfault FFmpeg) corrupts no channel but its own.

    Ctrl-C is the parent's to handle (it stops the workers), so workers ignore SIGINT; a worker
    whose parent is gone (its pipe is broken, or it was re-parented) exits quietly. With `free`
    (the pipe of free shared-memory blocks, extract/handover.py) windows go through blocks.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()
    blocks = WorkerBlocks(free) if free is not None else None
    try:
        while os.getppid() == parent:
            try:
                job = jobs.get(timeout=1.0)
            except queue.Empty:
                continue
            if job is None:
                break
            results.send(Started(job.index, os.getpid()))
            for message in decode(job):
                if blocks is not None and isinstance(message, Windows):
                    results.send(blocks.pack(message))
                else:
                    results.send(message)
    except (BrokenPipeError, EOFError, ConnectionError):
        pass  # the parent stopped reading: it is shutting down
    finally:
        results.close()


@dataclass
class _Worker:
    """A decode process, the read end of its own result pipe, and the job it is on."""

    process: Any
    conn: Any
    free: Any  # the write end of its pipe of free shared-memory blocks
    job: int | None = None
    blocks: RunBlocks | None = None  # its shared-memory blocks, made once the jobs are known


class DecodePool:
    """Worker processes fed from one job queue; each answers on its own pipe."""

    def __init__(self, workers: int, decode: DecodeFn) -> None:
        self.ctx = mp.get_context("spawn")
        self.decode = decode
        self.queue: Any = self.ctx.Queue()
        self.jobs: dict[int, DecodeJob] = {}
        self.done: set[int] = set()  # jobs with a Decoded or Failed message
        self.workers = [self._start() for _ in range(workers)]
        self.size = workers  # as started (a crashed worker is replaced, so it stays the size)
        self.closed = False

    def submit(self, jobs: list[DecodeJob]) -> None:
        """Queue the run's jobs (once), then one sentinel per worker."""
        self.jobs = {job.index: job for job in jobs}
        for worker in self.workers:
            self._share(worker)
        for job in jobs:
            self.queue.put(job)
        for _ in self.workers:
            self.queue.put(None)

    def _start(self) -> _Worker:
        reader, writer = self.ctx.Pipe(duplex=False)
        free_reader, free_writer = self.ctx.Pipe(duplex=False)
        args = (self.queue, writer, self.decode, free_reader)
        process = self.ctx.Process(target=worker_main, args=args, daemon=True)
        with _sigint_ignored():
            process.start()
        writer.close()  # the child holds its copy; EOF on `reader` now means the child is gone
        free_reader.close()
        worker = _Worker(process, reader, free_writer)
        if self.jobs:  # a replacement, started mid-run
            self._share(worker)
        return worker

    def _share(self, worker: _Worker) -> None:
        """Give `worker` its shared-memory blocks, sized for this run's chunks."""
        first = next(iter(self.jobs.values()))
        worker.blocks = RunBlocks.create(worker.free, first, self.size)

    def receive(self, worker: _Worker) -> Message | None:
        """The worker's next message; a dead worker fails its job and is replaced."""
        try:
            message: Message | WindowsIn = worker.conn.recv()
        except (EOFError, OSError):  # the process is gone
            self.workers.remove(worker)
            _release(worker)
            if worker.job is None or worker.job in self.done:
                return None
            self.done.add(worker.job)
            self.workers.append(self._start())  # takes over its sentinel
            return self._crashed(worker, worker.job)
        if isinstance(message, Started):
            worker.job = message.job
            return None
        if isinstance(message, WindowsIn):
            assert worker.blocks is not None  # only a worker given blocks sends a WindowsIn
            return worker.blocks.windows(message)
        if not isinstance(message, Windows):
            self.done.add(message.job)
            worker.job = None
        return message

    def _crashed(self, worker: _Worker, index: int) -> Failed:
        return Failed(index, exit_reason(self.jobs[index].path, worker.process.exitcode))

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for worker in self.workers:
            worker.process.kill()
        for worker in self.workers:
            _release(worker)
        # The feeder thread may still hold jobs for workers that are gone: do not wait for it.
        self.queue.cancel_join_thread()
        self.queue.close()


def _release(worker: _Worker) -> None:
    """Wait for a stopped worker, then close its pipes and free its blocks."""
    worker.process.join()
    worker.conn.close()
    if worker.blocks is not None:
        worker.blocks.close()  # closes `free` too
    else:
        worker.free.close()


def exit_reason(path: str, exitcode: int | None) -> str:
    """Why a worker died on `path`: killed by a signal (memory, the user) or crashed by the file."""
    where = shown(path)
    if exitcode is not None and -exitcode in _STOPPED_BY:
        name = signal.Signals(-exitcode).name
        return (
            f"{where}: the decode worker was killed by {name} ({_STOPPED_BY[-exitcode]}) while "
            "decoding this file; it was not embedded, rerun with fewer workers to retry it"
        )
    if exitcode is not None and exitcode < 0:
        code = f"signal {signal.Signals(-exitcode).name}"
    else:
        code = f"exit code {exitcode}"
    fix = "it is probably malformed, re-encode it"
    return f"{where}: the decoder crashed on this file ({code}); {fix}"


@contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Start children with SIGINT ignored (exec keeps it): no Ctrl-C traceback as they start."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may change signal handlers
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def start_pool(workers: int, decode: DecodeFn = decode_track) -> DecodePool | None:
    """Start `workers` decode processes now (None for 0), to be given to decode_messages: they
    start while the caller loads its model, instead of after."""
    return DecodePool(workers, decode) if workers > 0 else None


def decode_messages(
    jobs: list[DecodeJob],
    workers: int,
    decode: DecodeFn = decode_track,
    pool: DecodePool | None = None,
) -> Iterator[Message | None]:
    """Windows, Decoded and Failed messages in arrival order; None: nothing ready right now.

    `workers` 0 (and no `pool`) decodes in this process; `decode` turns one job into its
    messages. Otherwise each worker (of `pool`, which this closes, or of a pool started here)
    sends on its own pipe, and a worker that dies (a decoder segfault, an OOM kill) fails only
    the file it was decoding and is replaced, so one malformed file never stops a run.
    """
    if workers <= 0 and pool is None:
        for job in jobs:
            yield from decode(job)
        return
    if not jobs:
        if pool is not None:
            pool.close()
        return
    # more processes than files only cost start-up
    pool = pool or DecodePool(min(workers, len(jobs)), decode)
    pool.submit(jobs)
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

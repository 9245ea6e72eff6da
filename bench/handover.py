"""Benchmark: what handing decoded windows from a decode worker to extract costs: pipe or shm.

    python bench/handover.py [--messages 200] [--windows 64] [--reps 3]

A decode worker sends `Windows` messages (64 windows of 59,049 float32 samples, 15 MB) through its
pipe (`Connection.send`: pickled, written, read, unpickled), as `clmr_embed.extract.workers`
does. The alternative is shared memory: the worker writes each chunk into one of a few
`multiprocessing.shared_memory` blocks and sends only the block's number; the receiver reads the
windows in place and hands the block back. Both receivers touch every sample once (a sum), as
packing a batch would. Printed per path: windows per second through the hand-over and the CPU
seconds both processes spent per 1,000 windows (the sender's start included), to set beside the
model's: at M x real time on C cores the model spends 2.68 x C / M CPU-seconds per window
(OpenVINO int8 on 2 cores, M = 1,276: 4.2 CPU-seconds per 1,000 windows).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import time
from multiprocessing import shared_memory
from typing import Any

import numpy as np

WINDOW = 59_049
BLOCKS = 4  # shared-memory blocks in flight (a worker decodes ahead by at most this many chunks)


def _pipe_sender(conn: Any, messages: int, windows: int) -> None:
    chunk = np.random.default_rng(0).standard_normal((windows, WINDOW), dtype=np.float32)
    starts = np.arange(windows, dtype=np.int64)
    for i in range(messages):
        conn.send((i, chunk, starts))  # what worker_main sends: a tuple holding the arrays
    conn.send(None)


def _shm_sender(conn: Any, free: Any, names: list[str], messages: int, windows: int) -> None:
    chunk = np.random.default_rng(0).standard_normal((windows, WINDOW), dtype=np.float32)
    blocks = [shared_memory.SharedMemory(name=n) for n in names]
    views = [np.ndarray(chunk.shape, np.float32, buffer=b.buf) for b in blocks]
    for i in range(messages):
        block = free.recv()  # wait for a block the receiver has finished with
        views[block][:] = chunk  # the decoder would write its windows here instead
        conn.send((i, block, windows))
    conn.send(None)
    del views
    for b in blocks:
        b.close()


def run_pipe(messages: int, windows: int) -> float:
    reader, writer = mp.Pipe(duplex=False)
    child = mp.get_context("spawn").Process(target=_pipe_sender, args=(writer, messages, windows))
    child.start()
    writer.close()
    total = 0.0
    while (message := reader.recv()) is not None:
        total += float(message[1].sum())
    child.join()
    return total


def run_shm(messages: int, windows: int) -> float:
    size = windows * WINDOW * 4
    blocks = [shared_memory.SharedMemory(create=True, size=size) for _ in range(BLOCKS)]
    reader, writer = mp.Pipe(duplex=False)
    back_r, back_w = mp.Pipe(duplex=False)
    args = (writer, back_r, [b.name for b in blocks], messages, windows)
    child = mp.get_context("spawn").Process(target=_shm_sender, args=args)
    child.start()
    writer.close()
    for i in range(BLOCKS):
        back_w.send(i)
    views = [np.ndarray((windows, WINDOW), np.float32, buffer=b.buf) for b in blocks]
    total = 0.0
    while (message := reader.recv()) is not None:
        _, block, k = message
        windows = views[block][:k].copy()  # out of the block at once, so it can go straight back
        back_w.send(block)
        total += float(windows.sum())
    child.join()
    del views
    for b in blocks:
        b.close()
        b.unlink()
    return total


def _measure(fn: Any, messages: int, windows: int) -> dict[str, float]:
    before = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    fn(messages, windows)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = sum(
        a.ru_utime + a.ru_stime - b.ru_utime - b.ru_stime
        for a, b in zip(after, before, strict=True)
    )
    sent = messages * windows
    return {"windows_s": sent / wall, "cpu_s_per_1000": 1000 * cpu / sent}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--windows", type=int, default=64, help="windows per message (extract: 64)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    rows: dict[str, list[dict[str, float]]] = {"pipe": [], "shared memory": []}
    for _ in range(args.reps):  # interleaved, so machine drift hits both
        rows["pipe"].append(_measure(run_pipe, args.messages, args.windows))
        rows["shared memory"].append(_measure(run_shm, args.messages, args.windows))
    print(f"{args.messages} messages of {args.windows} windows, best of {args.reps}")
    print(f"{'path':<14} {'windows/s':>10} {'CPU s / 1000 windows':>22}")
    best = {}
    for name, found in rows.items():
        best[name] = max(found, key=lambda r: r["windows_s"])
        print(f"{name:<14} {best[name]['windows_s']:>10.0f} {best[name]['cpu_s_per_1000']:>22.3f}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"args": vars(args), "best": best, "all": rows}, out, indent=1)


if __name__ == "__main__":
    main()

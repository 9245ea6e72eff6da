"""Shared-memory hand-over of window chunks: a decode worker writes each chunk into a block the run
owns and its pipe carries only the block's number, not 15 MB of pickled samples.

Measured by `python bench/handover.py` (docs/performance.md): through the pipe a chunk costs both
processes 0.61 CPU-seconds per 1,000 windows on the 2-core benchmark machine, through a block
0.08, against the 4.2 the OpenVINO int8 model itself spends. The run copies a chunk out of its
block as soon as it arrives and hands the block straight back, so nothing downstream changes.
Where there is no /dev/shm, or too little of it (a container's default is 64 MB), the pipe is
used as before.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import shutil
from multiprocessing.shared_memory import SharedMemory
from pathlib import Path
from typing import Any

import numpy as np

from clmr_embed.extract.messages import DecodeJob, Windows, WindowsIn

SHM_DIR = Path("/dev/shm")  # POSIX shared memory on Linux; SharedMemory(name) lives here
BLOCKS = 2  # per worker: it fills one while the run copies the other out
SHM_SHARE = 0.25  # of /dev/shm's free space the blocks of all workers may take
SAMPLE_BYTES = np.dtype(np.float32).itemsize


class RunBlocks:
    """The run's side of one worker's blocks: turns a WindowsIn back into Windows and frees the
    block; `setup` tells the worker their names (None: use the pipe)."""

    def __init__(self, free: Any, blocks: list[SharedMemory], block_bytes: int) -> None:
        self.free = free  # the write end of the worker's pipe of free block numbers
        self.blocks = blocks
        self.block_bytes = block_bytes

    @classmethod
    def create(cls, free: Any, job: DecodeJob, workers: int) -> RunBlocks:
        """Blocks for chunks of `job`'s size, if /dev/shm has room for `workers` workers' worth."""
        block_bytes = job.chunk_windows * job.spec.window_samples * SAMPLE_BYTES
        blocks: list[SharedMemory] = []
        if _room(block_bytes * BLOCKS * workers):
            try:
                blocks = [SharedMemory(create=True, size=block_bytes) for _ in range(BLOCKS)]
            except OSError:  # no POSIX shared memory here after all: the pipe will do
                blocks = []
        run = cls(free, blocks, block_bytes)
        run.setup()
        return run

    def setup(self) -> None:
        """Send the worker the block names and every block's number (all free at first)."""
        self.free.send([(b.name, self.block_bytes) for b in self.blocks] or None)
        for index in range(len(self.blocks)):
            self.free.send(index)

    def windows(self, message: WindowsIn) -> Windows:
        """The chunk out of its block (a copy), the block given back to the worker."""
        shape = (message.n_windows, message.window)
        windows = np.ndarray(shape, np.float32, buffer=self.blocks[message.block].buf).copy()
        with contextlib.suppress(OSError):  # BrokenPipeError: the worker is gone (its EOF says)
            self.free.send(message.block)
        return Windows(message.job, windows, message.starts)

    def close(self) -> None:
        """Free the blocks (after the worker has stopped)."""
        self.free.close()
        for block in self.blocks:
            block.close()
            block.unlink()
        self.blocks = []


class WorkerBlocks:
    """The worker's side: writes a chunk into a free block and returns the message to send."""

    def __init__(self, free: Any) -> None:
        self.free = free  # the read end of this worker's pipe of free block numbers
        self.maps: list[mmap.mmap] = []
        self.block_bytes = 0
        self.ready = False

    def _attach(self) -> None:
        """Map the run's blocks by path: no resource tracker registration here, so only the
        run (their owner) ever unlinks them."""
        self.ready = True
        names = self.free.recv()
        for name, size in names or ():
            fd = os.open(SHM_DIR / name, os.O_RDWR)
            try:
                self.maps.append(mmap.mmap(fd, size))
            finally:
                os.close(fd)
            self.block_bytes = size

    def pack(self, message: Windows) -> Windows | WindowsIn:
        """`message` as a WindowsIn through a block, or itself where it does not fit one."""
        if not self.ready:
            self._attach()
        windows = message.windows
        fits = windows.dtype == np.float32 and windows.ndim == 2
        if not self.maps or not fits or windows.nbytes > self.block_bytes:
            return message
        block: int = self.free.recv()  # waits while the run still holds both blocks
        np.ndarray(windows.shape, np.float32, buffer=self.maps[block])[...] = windows
        return WindowsIn(message.job, block, windows.shape[0], windows.shape[1], message.starts)


def _room(needed: int) -> bool:
    """Whether /dev/shm exists and SHM_SHARE of its free space holds `needed` bytes."""
    try:
        return needed <= shutil.disk_usage(SHM_DIR).free * SHM_SHARE
    except OSError:
        return False

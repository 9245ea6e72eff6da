"""Shared-memory hand-over of window chunks: the same windows arrive, blocks are reused and freed,
and the pipe takes over where shared memory cannot."""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path

import numpy as np
import pytest

from clmr_embed.audio import WindowSpec
from clmr_embed.extract import ExtractConfig, handover, run_extract
from clmr_embed.extract.handover import BLOCKS, RunBlocks, WorkerBlocks
from clmr_embed.extract.messages import DecodeJob, Windows, WindowsIn
from tests.fixtures.audio import write_library, write_sine
from tests.fixtures.faults import CRASH_MARK, crashing_decoder

SPEC = WindowSpec(8000, 2187, 2187)
JOB = DecodeJob(0, "x.wav", SPEC, chunk_windows=4)


def _chunk(n: int, seed: int) -> Windows:
    rng = np.random.default_rng(seed)
    windows = rng.standard_normal((n, SPEC.window_samples), dtype=np.float32)
    return Windows(7, windows, np.arange(n, dtype=np.int64) * SPEC.hop_samples)


def _blocks_in_shm() -> set[str]:
    """Python's SharedMemory segments ("psm_*"; torch's data loaders beside a test make others)."""
    if not handover.SHM_DIR.is_dir():
        return set()
    return {name for name in os.listdir(handover.SHM_DIR) if name.startswith("psm_")}


def _pair() -> tuple[RunBlocks, WorkerBlocks]:
    reader, writer = mp.Pipe(duplex=False)
    return RunBlocks.create(writer, JOB, workers=1), WorkerBlocks(reader)


@pytest.mark.skipif(not handover.SHM_DIR.is_dir(), reason="no POSIX shared memory folder")
def test_chunks_cross_through_blocks_unchanged_and_the_blocks_are_freed() -> None:
    before = _blocks_in_shm()
    run, worker = _pair()
    assert len(run.blocks) == BLOCKS and len(_blocks_in_shm() - before) == BLOCKS
    for seed in range(3 * BLOCKS):  # more chunks than blocks: each block comes back
        sent = _chunk(4 - seed % 2, seed)
        packed = worker.pack(sent)
        assert isinstance(packed, WindowsIn) and packed.n_windows == len(sent.windows)
        got = run.windows(packed)
        np.testing.assert_array_equal(got.windows, sent.windows)
        np.testing.assert_array_equal(got.starts, sent.starts)
        assert got.job == sent.job
    run.close()
    assert _blocks_in_shm() == before


def test_a_chunk_larger_than_a_block_goes_through_the_pipe() -> None:
    run, worker = _pair()
    big = _chunk(5, 0)  # the job's chunks are 4 windows
    assert worker.pack(big) is big
    run.close()


def test_without_room_in_shared_memory_the_pipe_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handover, "SHM_DIR", Path("/no/such/shm"))
    run, worker = _pair()
    assert run.blocks == []
    chunk = _chunk(2, 0)
    assert worker.pack(chunk) is chunk
    run.close()


def test_extract_frees_every_block_even_when_a_worker_crashes(
    tmp_path: Path, tiny_tagger: Path
) -> None:
    before = _blocks_in_shm()
    lib = write_library(tmp_path / "lib")
    write_sine(lib / f"{CRASH_MARK}.wav", 440, 1.0, 8000)  # its worker exits abruptly
    config = ExtractConfig(
        inputs=(lib,), output=tmp_path / "o.h5", model=str(tiny_tagger), workers=2
    )
    summary = run_extract(config, decode=crashing_decoder)
    assert summary.embedded == 5 and [f.path for f in summary.failed] == ["crashme.wav"]
    assert _blocks_in_shm() == before

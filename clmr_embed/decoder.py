"""Decode workers: audio file -> windows at the model's rate, streamed in bounded chunks."""

from __future__ import annotations

import os
import queue
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from clmr_embed.audio import stream_audio
from clmr_embed.errors import AudioDecodeError
from clmr_embed.windowing import Framer

# Messages a worker sends, as plain tuples (cheap to pickle):
#   ("windows", index, windows float32 (k, window), starts int64 (k,))
#   ("done", index, TrackMeta)
#   ("error", index, reason)
#   ("start", index, worker pid, None)  (worker processes only)
Message = tuple[str, int, Any, Any]
CRASH_TEST_ENV = "CLMR_EMBED_TEST_CRASH_ON"  # tests: a worker exits abruptly on paths containing it


@dataclass(frozen=True)
class DecodeJob:
    """One file to decode and cut into windows."""

    index: int  # position in the extract plan, echoed in every message
    path: str  # absolute path of the audio file
    sample_rate: int  # the model's rate (Hz)
    window: int  # the model's window (samples)
    hop: int  # hop between window starts (samples)
    chunk_windows: int = 64  # windows per message: bounds memory for hours-long files
    backend: str = "av"  # decoder: "av" (PyAV/FFmpeg) or "soundfile" (libsndfile)


@dataclass(frozen=True)
class TrackMeta:
    """What a worker learned about a decoded file."""

    duration_s: float  # decoded length at the model's rate
    source_rate: int  # the file's own sample rate
    channels: int  # the file's channel count
    padded: bool  # shorter than one window: one zero-padded window
    silent: bool  # digital silence: every sample is exactly zero


def decode_track(job: DecodeJob) -> Iterator[Message]:
    """Decode one file into window chunks; a bad file ends in an ("error", ...) message."""
    try:
        info, blocks = stream_audio(Path(job.path), job.sample_rate, backend=job.backend)
        framer = Framer(job.window, job.hop)
        peak = 0.0
        parts: list[np.ndarray] = []
        starts: list[np.ndarray] = []
        for block in blocks:
            if block.size:
                peak = max(peak, float(np.abs(block).max()))
            windows, offsets = framer.push(block)
            if len(windows):
                parts.append(windows)
                starts.append(offsets)
            if sum(len(p) for p in parts) >= job.chunk_windows:
                yield ("windows", job.index, np.concatenate(parts), np.concatenate(starts))
                parts, starts = [], []
        if framer.total_samples == 0:
            raise AudioDecodeError(f"{job.path}: contains no audio samples (empty file)")
        windows, offsets, padded = framer.finish()
        if len(windows):
            parts.append(windows)
            starts.append(offsets)
        if parts:
            yield ("windows", job.index, np.concatenate(parts), np.concatenate(starts))
        meta = TrackMeta(
            duration_s=framer.total_samples / job.sample_rate,
            source_rate=info.source_rate,
            channels=info.channels,
            padded=padded,
            silent=peak == 0.0,
        )
        yield ("done", job.index, meta, None)
    except AudioDecodeError as exc:
        yield ("error", job.index, str(exc), None)
    except Exception as exc:  # noqa: BLE001 - one broken file must never stop a library run
        yield ("error", job.index, f"{job.path}: {type(exc).__name__}: {exc}", None)


def worker_main(jobs: Any, results: Any) -> None:
    """Process entry point: decode jobs from `jobs` until a None sentinel arrives.

    `results` is this worker's own pipe end: `send` writes synchronously (no feeder thread), so
    ("start", index, pid) reaches the parent before decoding begins, and a decoder that crashes the
    whole process (a malformed file can segfault FFmpeg) corrupts no channel but its own.
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
        results.send(("start", job.index, os.getpid(), None))
        if crash_on and crash_on in job.path:
            os._exit(70)
        for message in decode_track(job):
            results.send(message)

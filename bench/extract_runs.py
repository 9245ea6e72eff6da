"""The measurements bench/extract.py runs, each in its own process (so peak RSS is its own).

    python bench/extract_runs.py KIND '{"json": "arguments"}'   # prints one JSON line

KIND is one of:
  warm    open the path once (its first-use check runs and is cached); the model's rate/window
  decode  the product's decode path alone: extract's decode workers (PyAV + soxr + windowing,
          decode_messages), every message consumed, nothing embedded; wall, wall from the
          first message, and the workers' CPU seconds
  model   the engine alone on pre-decoded windows (an .npy the parent wrote), batch by batch
  e2e     run_extract as `clmr-embed extract` runs it, with the given workers/threads/spin
  torch   the original CLMR pipeline (torch eager fp32, one file at a time); "torch-b1": batch 1
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np


def _hwm_mb(pid: int | str = "self") -> float:
    """Peak RSS of a process (VmHWM). Not ru_maxrss: Linux carries that over exec from the
    parent, so every child would report at least the bench's own peak."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class _Workers(threading.Thread):
    """Polls the peak RSS of this process's children (the decode workers) until stopped."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak, self.done = 0.0, threading.Event()

    def run(self) -> None:
        me = str(os.getpid())
        while not self.done.wait(0.5):
            for pid in filter(str.isdigit, os.listdir("/proc")):
                with contextlib.suppress(OSError, IndexError):
                    stat = Path(f"/proc/{pid}/stat").read_text()
                    if stat.rsplit(")", 1)[1].split()[1] == me:
                        self.peak = max(self.peak, _hwm_mb(pid))

    def __enter__(self) -> _Workers:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.join()


def _engine_config(a: dict[str, Any], threads: int, spin: bool = True) -> Any:
    from clmr_embed.engines import EngineConfig

    return EngineConfig(a["precision"], a["engine"], "cpu", threads, spin=spin)


def warm(a: dict[str, Any]) -> dict[str, Any]:
    from clmr_embed.digest import ModelFile
    from clmr_embed.engines import open_engine

    engine = open_engine(ModelFile.hashed(Path(a["model"])), _engine_config(a, a["threads"]))
    info = engine.info
    return {"ran": engine.precision, "detail": engine.detail, "rate": info.sample_rate,
            "window": info.window_samples}  # fmt: skip


def _jobs(files: list[str], rate: int, window: int) -> list[Any]:
    from clmr_embed.audio import WindowSpec
    from clmr_embed.extract.messages import DecodeJob

    spec = WindowSpec.from_hop_seconds(rate, window, None)  # extract's default hop
    return [DecodeJob(i, path, spec) for i, path in enumerate(files)]


def decoded_windows(files: list[str], rate: int, window: int) -> tuple[np.ndarray, float]:
    """Every window of `files` exactly as extract cuts them, and their audio seconds."""
    from clmr_embed.extract.messages import Decoded, Windows
    from clmr_embed.extract.workers import decode_messages

    parts, audio_s = [], 0.0
    for message in decode_messages(_jobs(files, rate, window), 0):
        if isinstance(message, Windows):
            parts.append(message.windows)
        elif isinstance(message, Decoded):
            audio_s += message.file.duration_s
    return np.concatenate(parts).astype(np.float32), audio_s


def _ready(a: dict[str, Any]) -> None:
    """In a co-run (bench/extract.py's C), say "ready" once set up and wait for the parent's
    go, so that the two processes' timed parts start together."""
    if a.get("corun"):
        print("ready", flush=True)
        sys.stdin.readline()


def decode(a: dict[str, Any]) -> dict[str, Any]:
    from clmr_embed.extract.messages import Decoded, Failed
    from clmr_embed.extract.workers import decode_messages, start_pool

    jobs = _jobs(a["files"], a["rate"], a["window"])
    pool = start_pool(min(a["workers"], len(jobs))) if a.get("corun") else None
    _ready(a)  # a co-run times the decoding, not the workers' start
    audio_s, began, first = 0.0, time.perf_counter(), None
    with _Workers() as workers:
        for message in decode_messages(jobs, a["workers"], pool=pool):
            first = first or (time.perf_counter() if message is not None else None)
            if isinstance(message, Decoded):
                audio_s += message.file.duration_s
            elif isinstance(message, Failed):
                raise RuntimeError(message.reason)
        wall = time.perf_counter() - began
    used = resource.getrusage(resource.RUSAGE_CHILDREN)  # the workers, all joined by now
    return {"audio_s": audio_s, "wall_s": wall, "from_first_s": wall - (first or began) + began,
            "cpu_s": used.ru_utime + used.ru_stime, "workers_rss_mb": workers.peak}  # fmt: skip


def model(a: dict[str, Any]) -> dict[str, Any]:
    from clmr_embed.digest import ModelFile
    from clmr_embed.engines import open_engine

    engine = open_engine(
        ModelFile.hashed(Path(a["model"])), _engine_config(a, a["threads"], a.get("spin", True))
    )
    windows, batch = np.load(a["windows"]), a["batch"]
    engine.run(windows[:batch])  # warm-up
    _ready(a)
    began = time.perf_counter()
    for i in range(0, len(windows), batch):
        engine.run(windows[i : i + batch])
    wall = time.perf_counter() - began
    return {"audio_s": a["audio_s"], "wall_s": wall, "ran": engine.precision}


def _openvino_knobs(a: dict[str, Any]) -> None:
    """The OpenVINO levers bench/extract.py compares (module settings of the engine)."""
    from clmr_embed.engines import openvino

    if a.get("chunk") is not None:
        openvino.CHUNK_WINDOWS = a["chunk"]
    if a.get("pin") is not None:
        openvino.PIN_THREADS = a["pin"]


def niced_decode(nice: int, job: Any) -> Any:
    """extract's decode_track in a worker lowered to niceness `nice` (once: nice only rises)."""
    from clmr_embed.extract.workers import decode_track

    if os.nice(0) < nice:
        os.nice(nice - os.nice(0))
    return decode_track(job)


class _Clock:
    """extract's progress callbacks, timed: when embedding began and when the last track
    finished, so the run's embedding phase is told apart from its start-up (imports done,
    workers spawned, model compiled, store opened) and from the final commit."""

    def __init__(self) -> None:
        self.began = self.last = 0.0

    def start(self, total_files: int) -> None:
        self.began = time.perf_counter()

    def advance(self, relpath: str, duration_s: float) -> None:
        self.last = time.perf_counter()


def e2e(a: dict[str, Any]) -> dict[str, Any]:
    from clmr_embed.extract import ExtractConfig, run_extract

    _openvino_knobs(a)
    spin = {} if a["spin"] is None else {"spin": a["spin"]}  # older commits lack the option

    with tempfile.TemporaryDirectory() as tmp:
        config = ExtractConfig(
            inputs=tuple(Path(f) for f in a["files"]), output=Path(tmp) / "bench.h5",
            model=a["model"], device="cpu", threads=a["threads"], precision=a["precision"],
            engine=a["engine"], workers=a["workers"], batch_size=a["batch"], **spin,
        )  # fmt: skip
        began = time.perf_counter()
        extra = {}
        if a.get("nice"):  # the decode workers' niceness (the lever; extract leaves it at 0)
            extra["decode"] = functools.partial(niced_decode, a["nice"])
        clock = _Clock()
        with _Workers() as workers:
            summary = run_extract(config, clock, **extra)
            wall = time.perf_counter() - began
    if summary.failed:
        raise RuntimeError(summary.failed[0].reason)
    return {"audio_s": summary.duration_s, "wall_s": wall, "ran": summary.precision,
            "workers_rss_mb": workers.peak, "startup_s": clock.began - began,
            "workers": getattr(summary, "workers", None),  # what auto picked (newer commits)
            "embedding_s": clock.last - clock.began}  # fmt: skip


def original(a: dict[str, Any]) -> dict[str, Any]:
    import torch

    from clmr_embed.audio import frame, load_audio
    from export.placeholder import build_placeholder

    torch.set_num_threads(max(1, a["threads"]))
    encoder, _ = build_placeholder()
    encoder.eval()
    audio_s, began = 0.0, time.perf_counter()
    with torch.inference_mode():
        for path in a["files"]:
            samples, _ = load_audio(Path(path), 22050)
            batch = torch.from_numpy(frame(samples, 59049, 59049).windows)[:, None, :]
            for part in batch.split(1) if a["kind"] == "torch-b1" else [batch]:
                encoder(part)
            audio_s += len(samples) / 22050
    return {"audio_s": audio_s, "wall_s": time.perf_counter() - began, "ran": "fp32"}


KINDS = {"warm": warm, "decode": decode, "model": model, "e2e": e2e, "torch": original,
         "torch-b1": original}  # fmt: skip


def main() -> None:
    kind, arguments = sys.argv[1], json.loads(sys.argv[2])
    result = KINDS[kind]({**arguments, "kind": kind})
    print(json.dumps({**result, "peak_rss_mb": _hwm_mb()}))


if __name__ == "__main__":
    main()

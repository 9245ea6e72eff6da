"""Benchmark: x real time and peak RSS of every engine/precision path, end to end and model-only.

Not a test. Each variant runs in its own subprocess (so peak RSS is its own) on the same songs:
  e2e    clmr-embed extract (run_extract: decode worker, packed batches, the store) with
         --precision/--engine, its first-use check already cached (as on every run but the first)
  model  the same path on pre-decoded windows of the same songs (the ceiling)
for onnxruntime fp32 (the reference) and int8, OpenVINO fp32 / bf16 / int8; with --original
also the original CLMR pipeline (torch eager fp32, inference_mode, one file at a time, all its
windows in one batch, and at batch 1). The machine's fp32 / bf16 / int8 GEMM rates (OpenVINO
MatMul, bench/precision.py) are measured in the same run. Prints one table: x real time, the
ratio to onnxruntime fp32 of the same kind, e2e/model of the path, peak RSS.

    python bench/extract.py [FILES_OR_DIRS...] [--songs 6] [--threads 2] [--original]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from precision import VARIANTS, gemm_rates  # bench/precision.py, beside this script

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DEFAULT_INPUT = SHARED / "audio" / "clmr_demo"
BATCH = 16  # windows per model call, extract's default
ORIGINAL = ("torch", "torch-b1")  # the original pipeline: all windows of a file, batch 1


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _windows(
    files: list[Path], rate: int, window: int
) -> Iterator[tuple[Path, npt.NDArray[np.float32], float]]:
    from clmr_embed.audio import frame, load_audio

    for path in files:
        samples, _ = load_audio(path, rate)
        yield path, frame(samples, window, window).windows.astype(np.float32), len(samples) / rate


def _engine_config(args: argparse.Namespace) -> Any:
    from clmr_embed.engines import EngineConfig

    return EngineConfig(args.precision, args.engine, "cpu", args.threads)


def end_to_end(args: argparse.Namespace, files: list[Path]) -> dict[str, Any]:
    """run_extract on the path; its first-use check runs (and is cached) before the clock."""
    from clmr_embed.engines import open_engine
    from clmr_embed.extract import ExtractConfig, run_extract

    open_engine(Path(args.model), _engine_config(args))
    with tempfile.TemporaryDirectory() as tmp:
        config = ExtractConfig(
            inputs=tuple(files), output=Path(tmp) / "bench.h5", model=args.model,
            device="cpu", threads=args.threads, precision=args.precision, engine=args.engine,
            workers=1, batch_size=BATCH,
        )  # fmt: skip
        began = time.perf_counter()
        summary = run_extract(config)
        wall = time.perf_counter() - began
    return {"duration_s": summary.duration_s, "wall_s": wall, "ran": summary.precision}


def model_only(args: argparse.Namespace, files: list[Path]) -> dict[str, Any]:
    """The path's engine on pre-decoded windows, BATCH at a time, after one warm-up batch."""
    from clmr_embed.engines import open_engine

    engine = open_engine(Path(args.model), _engine_config(args))
    info = engine.info
    windows = np.concatenate(
        [w for _, w, _ in _windows(files, info.sample_rate, info.window_samples)]
    )
    engine.run(windows[:BATCH])
    began = time.perf_counter()
    for i in range(0, len(windows), BATCH):
        engine.run(windows[i : i + BATCH])
    wall = time.perf_counter() - began
    return {
        "duration_s": len(windows) * info.window_seconds,
        "wall_s": wall,
        "ran": engine.precision,
    }


def original(args: argparse.Namespace, files: list[Path]) -> dict[str, Any]:
    """The original CLMR pipeline: torch eager SampleCNN, one file at a time."""
    import torch

    from export.placeholder import build_placeholder

    torch.set_num_threads(args.threads)
    encoder, _ = build_placeholder()
    encoder.eval()
    duration_s, began = 0.0, time.perf_counter()
    with torch.inference_mode():
        for _, windows, seconds in _windows(files, 22050, 59049):
            batch = torch.from_numpy(windows)[:, None, :]
            for part in batch.split(1) if args.kind == "torch-b1" else [batch]:
                encoder(part)
            duration_s += seconds
    return {"duration_s": duration_s, "wall_s": time.perf_counter() - began, "ran": "fp32"}


def _child(args: argparse.Namespace) -> None:
    files = [Path(p) for p in args.files]
    run = {"e2e": end_to_end, "model": model_only}.get(args.kind, original)
    print(json.dumps({**run(args, files), "peak_rss_mb": _peak_rss_mb()}))


def _run_child(
    args: argparse.Namespace, kind: str, pair: tuple[str, str], files: list[str]
) -> dict:
    cmd = [sys.executable, __file__, "--kind", kind, "--engine", pair[0], "--precision", pair[1],
           "--model", args.model, "--threads", str(args.threads), "--files", *files]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1][:200] if done.stderr else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _table(rows: dict[tuple[str, str, str], dict]) -> None:
    print(f"{'variant':<28} {'ran':<5} {'x real time':>11} {'vs ort fp32':>11} "
          f"{'e2e/model':>9} {'peak RSS MB':>11}")  # fmt: skip
    speed = {k: r["duration_s"] / r["wall_s"] for k, r in rows.items() if "error" not in r}
    for (kind, engine, precision), r in rows.items():
        name = f"{kind} {engine} {precision}" if kind in ("e2e", "model") else kind
        if "error" in r:
            print(f"{name:<28} failed: {r['error']}")
            continue
        x = speed[(kind, engine, precision)]
        base = speed.get((kind if kind in ("e2e", "model") else "e2e", *VARIANTS[0]))
        model = speed.get(("model", engine, precision))
        ratio = f"{x / base:11.2f}" if base else f"{'-':>11}"
        share = f"{x / model:9.2f}" if kind == "e2e" and model else f"{'-':>9}"
        print(f"{name:<28} {r['ran']:<5} {x:10.1f}x {ratio} {share} {r['peak_rss_mb']:11.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="*", type=Path, default=[DEFAULT_INPUT])
    parser.add_argument("--model", default=None, help="ONNX model (default: the bundled one)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--songs", type=int, default=0, help="only the first N files (0: all)")
    parser.add_argument("--original", action="store_true", help="also the torch pipeline")
    parser.add_argument("--kind", help=argparse.SUPPRESS)
    parser.add_argument("--engine", help=argparse.SUPPRESS)
    parser.add_argument("--precision", help=argparse.SUPPRESS)
    parser.add_argument("--files", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.kind:
        _child(args)
        return
    from clmr_embed.resolution import resolve_model
    from clmr_embed.scan import find_audio_files

    args.model = str(resolve_model(args.model))
    files = sorted(str(f.path) for f in find_audio_files(args.inputs))
    files = files[: args.songs] if args.songs > 0 else files
    rates = gemm_rates(args.threads)
    print("GEMM 1024^3 (OpenVINO, this run): "
          + ", ".join(f"{k} {v:.0f} GOP/s" for k, v in rates.items()), flush=True)  # fmt: skip
    kinds = [(k, pair) for pair in VARIANTS for k in ("model", "e2e")]
    kinds += [(k, VARIANTS[0]) for k in ORIGINAL] if args.original else []
    rows = {}
    for kind, pair in kinds:
        rows[(kind, *pair)] = _run_child(args, kind, pair, files)
        print(f"  {kind} {' '.join(pair)}: {rows[(kind, *pair)]}", file=sys.stderr, flush=True)
    minutes = rows[("e2e", *VARIANTS[0])].get("duration_s", 0) / 60
    print(f"{len(files)} files, {minutes:.1f} min audio, {args.threads} threads")
    _table(rows)


if __name__ == "__main__":
    main()

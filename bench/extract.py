"""Benchmark: audio-seconds per wall-second and peak RSS of extract vs the original pipeline.

Not a test. Runs each variant in its own subprocess (so peak RSS is its own) on the same files:
  a    clmr-embed extract (onnxruntime fp32, packed batches, decode workers)
  b    the original CLMR pipeline pinned: torch eager fp32 SampleCNN under inference_mode,
       2 threads, the same decoder, one file at a time with all its windows in one batch
  b1   the same at batch 1
  c    onnxruntime model-only on pre-decoded windows (the ceiling)
Prints a/b and a/c.  Usage: python bench/extract.py [FILES_OR_DIRS...] [--model PATH] [--threads 2]
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

import numpy as np
import numpy.typing as npt

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DEFAULT_INPUT = SHARED / "audio" / "clmr_demo"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _windows(
    files: list[Path], rate: int, window: int
) -> Iterator[tuple[Path, npt.NDArray[np.float32], float]]:

    from clmr_embed.audio import frame, load_audio

    for path in files:
        samples, _ = load_audio(path, rate)
        yield path, frame(samples, window, window).windows.astype(np.float32), len(samples) / rate


def variant_a(files: list[Path], model: str, threads: int) -> dict[str, float]:
    from clmr_embed.extract import ExtractConfig, run_extract

    with tempfile.TemporaryDirectory() as tmp:
        config = ExtractConfig(
            inputs=tuple(files), output=Path(tmp) / "bench.h5", model=model,
            threads=threads, workers=1, batch_size=16,
        )  # fmt: skip
        began = time.perf_counter()
        summary = run_extract(config)
        wall = time.perf_counter() - began
    return {"duration_s": summary.duration_s, "wall_s": wall}


def variant_b(files: list[Path], threads: int, batch_one: bool) -> dict[str, float]:
    import torch

    from export.placeholder import build_placeholder

    torch.set_num_threads(threads)
    encoder, _ = build_placeholder()
    encoder.eval()
    duration_s, began = 0.0, time.perf_counter()
    with torch.inference_mode():
        for _, windows, seconds in _windows(files, 22050, 59049):
            batch = torch.from_numpy(windows)[:, None, :]
            if batch_one:
                for i in range(len(batch)):
                    encoder(batch[i : i + 1])
            else:
                encoder(batch)
            duration_s += seconds
    return {"duration_s": duration_s, "wall_s": time.perf_counter() - began}


def variant_c(files: list[Path], model: str, threads: int) -> dict[str, float]:
    from clmr_embed.model import OnnxModel, SessionConfig

    onnx_model = OnnxModel(Path(model), SessionConfig("cpu", threads))
    decoded = list(_windows(files, 22050, 59049))
    windows = np.concatenate([w for _, w, _ in decoded])
    duration_s = sum(s for _, _, s in decoded)
    began = time.perf_counter()
    for i in range(0, len(windows), 16):
        onnx_model.run(windows[i : i + 16])
    return {"duration_s": duration_s, "wall_s": time.perf_counter() - began}


def _child(args: argparse.Namespace) -> None:
    files = [Path(p) for p in args.files]
    if args.variant == "a":
        result = variant_a(files, args.model, args.threads)
    elif args.variant in ("b", "b1"):
        result = variant_b(files, args.threads, batch_one=args.variant == "b1")
    else:
        result = variant_c(files, args.model, args.threads)
    print(json.dumps({**result, "peak_rss_mb": _peak_rss_mb()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="*", type=Path, default=[DEFAULT_INPUT])
    parser.add_argument("--model", default=None, help="ONNX model (default: the bundled one)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--files", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        _child(args)
        return
    from clmr_embed.registry import resolve_model
    from clmr_embed.scan import find_audio_files

    model = str(resolve_model(args.model))
    files = [str(f.path) for f in find_audio_files(args.inputs)]
    rows = {}
    for variant in ("a", "b", "b1", "c"):
        cmd = [sys.executable, __file__, "--variant", variant, "--model", model,
               "--threads", str(args.threads), "--files", *files]  # fmt: skip
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        rows[variant] = json.loads(out.strip().splitlines()[-1])
        r = rows[variant]
        speed = r["duration_s"] / r["wall_s"]
        print(f"{variant:>3}: {speed:7.1f}x real time, {r['wall_s']:6.1f} s wall, "
              f"peak RSS {r['peak_rss_mb']:6.0f} MB", flush=True)  # fmt: skip
    speed = {k: v["duration_s"] / v["wall_s"] for k, v in rows.items()}
    print(f"a/b = {speed['a'] / speed['b']:.2f}, a/b1 = {speed['a'] / speed['b1']:.2f}, "
          f"a/c = {speed['a'] / speed['c']:.2f}  ({len(files)} files, "
          f"{rows['a']['duration_s'] / 60:.1f} min audio, {args.threads} threads)")  # fmt: skip


if __name__ == "__main__":
    main()

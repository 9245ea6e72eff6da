"""Benchmark: every engine/precision path, model-only and end to end, plus the quality gate.

Not a test. Each variant runs in its own subprocess (so peak RSS is its own):
  onnxruntime fp32 (the reference), onnxruntime int8, OpenVINO fp32 / bf16 / int8
model-only: x real time on pre-decoded demo windows (best of --reps passes over --windows);
end to end: decode + window + infer of the first --songs demo songs, one pass (decoding
  the next song in a thread while the model runs).
Also measured in the same run: the machine's fp32 / bf16 / int8 GEMM rates (OpenVINO MatMul),
and (unless --no-gate) tools.precision's quality gate for every path on all demo windows.
Prints one table with the ratio of each path to onnxruntime fp32.

    nice -n 10 python bench/precision.py [--model PATH] [--threads 2] [--songs 1] [--no-gate]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "clmr_embed" / "models" / "clmr-free.onnx"
DEMO = ROOT.parent / "shared" / "audio" / "clmr_demo"
VARIANTS = (
    ("onnxruntime", "fp32"),
    ("onnxruntime", "int8"),
    ("openvino", "fp32"),
    ("openvino", "bf16"),
    ("openvino", "int8"),
)
BATCH = 16
GEMM = 1024  # M = N = K of the GEMM rate probe
GEMM_KINDS = (("fp32", False, "f32"), ("bf16", False, "bf16"), ("int8", True, "f32"))


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _songs(demo: Path) -> list[Path]:
    return sorted(demo.glob("*.mp3"))


def _infer(engine: Any, windows: Any) -> None:
    for i in range(0, len(windows), BATCH):
        engine.run(windows[i : i + BATCH])


def variant(args: argparse.Namespace) -> dict:
    """One path in this process: model-only and end-to-end x real time, peak RSS."""
    import numpy as np

    from clmr_embed.audio import frame, load_audio
    from clmr_embed.digest import ModelFile
    from clmr_embed.engines.choice import build
    from clmr_embed.engines.engine import EngineConfig

    config = EngineConfig(device="cpu", threads=args.threads, validate=False)
    engine = build(ModelFile.hashed(args.model), (args.engine, args.precision), config)
    info = engine.info
    songs = _songs(args.demo)
    samples, _ = load_audio(songs[0], info.sample_rate)
    windows = np.ascontiguousarray(frame(samples, info.window_samples, info.window_samples).windows)
    windows = windows[: args.windows]
    _infer(engine, windows[:BATCH])  # warm-up
    best = float("inf")
    for _ in range(args.reps):
        began = time.perf_counter()
        _infer(engine, windows)
        best = min(best, time.perf_counter() - began)
    audio_s, began = 0.0, time.perf_counter()
    # Decode the next song in a thread while the model runs (extract overlaps them too).
    with ThreadPoolExecutor(1) as pool:
        pending = [pool.submit(load_audio, p, info.sample_rate) for p in songs[: args.songs]]
        for future in pending:
            samples, _ = future.result()
            _infer(engine, frame(samples, info.window_samples, info.window_samples).windows)
            audio_s += len(samples) / info.sample_rate
    end_to_end = time.perf_counter() - began
    return {
        "engine": engine.engine,
        "precision": engine.precision,
        "detail": engine.detail,
        "model_x": len(windows) * info.window_seconds / best,
        "e2e_x": audio_s / end_to_end,
        "peak_rss_mb": _peak_rss_mb(),
    }


def _gemm_file(folder: Path, int8: bool) -> Path:
    """An ONNX MatMul (1024^3), float or QDQ int8 (OpenVINO runs that as an int8 GEMM)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = rng.standard_normal((GEMM, GEMM)).astype(np.float32)
    inits, nodes, a, b = [], [], "a", "w"
    if int8:
        scale = numpy_helper.from_array(np.array(0.05, dtype=np.float32), "s")
        zero_u8 = numpy_helper.from_array(np.array(128, dtype=np.uint8), "zu")
        zero_s8 = numpy_helper.from_array(np.array(0, dtype=np.int8), "zs")
        q = np.clip(np.round(weight / 0.05), -127, 127).astype(np.int8)
        inits += [scale, zero_u8, zero_s8, numpy_helper.from_array(q, "wq")]
        nodes += [
            helper.make_node("QuantizeLinear", ["a", "s", "zu"], ["aq"]),
            helper.make_node("DequantizeLinear", ["aq", "s", "zu"], ["ad"]),
            helper.make_node("DequantizeLinear", ["wq", "s", "zs"], ["wd"]),
        ]
        a, b = "ad", "wd"
    else:
        inits.append(numpy_helper.from_array(weight, "w"))
    nodes.append(helper.make_node("MatMul", [a, b], ["y"]))
    graph = helper.make_graph(
        nodes,
        "gemm",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [GEMM, GEMM])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [GEMM, GEMM])],
        inits,
    )
    path = folder / f"gemm-{'int8' if int8 else 'f32'}.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def gemm_rates(threads: int) -> dict[str, float]:
    """GOP/s of a 1024^3 GEMM on OpenVINO's CPU plugin at fp32, bf16 and int8."""
    import numpy as np
    import openvino as ov

    core = ov.Core()
    a = np.random.default_rng(1).standard_normal((GEMM, GEMM)).astype(np.float32)
    rates = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, int8, hint in GEMM_KINDS:
            props: dict[str, Any] = {"INFERENCE_PRECISION_HINT": hint}
            props["PERFORMANCE_HINT"] = "LATENCY"
            if threads > 0:
                props["INFERENCE_NUM_THREADS"] = threads
            compiled = core.compile_model(str(_gemm_file(Path(tmp), int8)), "CPU", props)
            request = compiled.create_infer_request()
            request.infer({"a": a})
            best = float("inf")
            for _ in range(10):
                began = time.perf_counter()
                request.infer({"a": a})
                best = min(best, time.perf_counter() - began)
            rates[name] = 2 * GEMM**3 / best / 1e9
    return rates


def _child(args: argparse.Namespace, engine: str, precision: str) -> dict:
    cmd = [sys.executable, __file__, "--child", engine, precision, "--model", str(args.model),
           "--demo", str(args.demo), "--threads", str(args.threads), "--songs", str(args.songs),
           "--windows", str(args.windows), "--reps", str(args.reps)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"engine": engine, "precision": precision, "error": done.stderr.strip()[-300:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _gate(args: argparse.Namespace) -> dict[tuple[str, str], dict]:
    from dataclasses import asdict

    sys.path.insert(0, str(ROOT))
    from tools.precision import quality_gate

    return {
        pair: asdict(r) for pair, r in quality_gate(args.model, args.demo, args.threads).items()
    }


def _row(name: str, r: dict, base: dict, gate: dict | None) -> str:
    if "error" in r:
        return f"{name:<22} failed: {r['error']}"
    line = (
        f"{name:<22} {r['precision']:<5} {r['model_x']:7.1f} {r['model_x'] / base['model_x']:5.2f}"
        f" {r['e2e_x']:7.1f} {r['e2e_x'] / base['e2e_x']:5.2f} {r['peak_rss_mb']:7.0f}"
    )
    if gate:
        retrieval = max(abs(v) for v in gate["retrieval_delta"].values())
        line += (
            f"  {gate['cosine_min']:.4f} {gate['cosine_mean']:.4f}"
            f" {min(gate['top5_shared'].values())}/5 {retrieval:.3f}"
            f" {'pass' if gate['passed'] else 'FAIL'}"
        )
    return line


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child", nargs=2, metavar=("ENGINE", "PRECISION"))
    parser.add_argument("--model", type=Path, default=MODEL)
    parser.add_argument("--demo", type=Path, default=DEMO)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--songs", type=int, default=1, help="demo songs end to end")
    parser.add_argument("--windows", type=int, default=64, help="windows model-only")
    parser.add_argument("--reps", type=int, default=3, help="model-only passes (best counts)")
    parser.add_argument("--no-gate", action="store_true", help="skip the quality gate")
    args = parser.parse_args()
    if args.child:
        args.engine, args.precision = args.child
        print(json.dumps(variant(args)))
        return 0
    rates = gemm_rates(args.threads)
    results = {v: _child(args, *v) for v in VARIANTS}
    gate = {} if args.no_gate else _gate(args)
    print(f"GEMM {GEMM}^3 (OpenVINO): " + ", ".join(f"{k} {v:.0f} GOP/s" for k, v in rates.items()))
    print(
        f"{'variant':<22} {'ran':<5} {'model-x':>7} {'ratio':>5} {'e2e-x':>7} {'ratio':>5}"
        f" {'RSS MB':>7}" + ("" if args.no_gate else "  cos-min cos-mean top5 retr.d gate")
    )
    base = results[("onnxruntime", "fp32")]
    for (engine, precision), r in results.items():
        gated = gate.get((engine, precision))
        print(_row(f"{engine} {precision}", r, base, gated))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: how close `clmr-embed extract` runs to what its decoder and model allow together.

Not a test. In one interleaved run on the same songs (each measurement its own subprocess, so
peak RSS is its own; bench/extract_runs.py), repeated --reps times in alternating order:
  D  decode only: extract's decode path (PyAV + soxr + windowing, decode workers), nothing
     embedded; D = cores x audio / the workers' CPU seconds (their wall time with
     --decode-workers, default the CPU count, is printed too)
  M  model only: each engine/precision on the pre-decoded windows of the same songs, all cores
  B  the bound 1 / (1/M + 1/D): one pass costs at least the model's and the decoder's CPU time
  E  end to end: run_extract (`clmr-embed extract`) per path and per --e2e setting
     WORKERS:THREADS:SPIN[:CHUNK[:PIN[:NICE[:BATCH]]]] (SPIN on, off or auto: off when workers > 0,
     extract's default; CHUNK: OpenVINO windows per infer request; PIN: OpenVINO's thread
     pinning; NICE: the decode workers' niceness, 0 as extract runs them; BATCH: windows per
     model call, default --batch)
  C  co-run: the model-only and the decode-only run at once, two processes started together
     after their set-up: what the machine gives two independent jobs sharing its cores (the
     pipeline's own ceiling; C/B < 1 is the machine's, not extract's)
  E/B, E over the embedding phase only (start-up and last commit left out), E and M relative
     to onnxruntime fp32
  start-up: `clmr-embed --help`, and `clmr-embed extract` on one short file minus its audio / B
x real time is audio seconds over wall seconds (best of the reps). Prints tables, writes --json.

    python bench/extract.py [FILES_OR_DIRS...] [--songs 6] [--reps 2] [--e2e 1:0:auto ...]
        [--paths onnxruntime:fp32,openvino:int8] [--json extract-bench.json] [--original]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from extract_runs import decoded_windows  # bench/extract_runs.py, beside this script
from precision import VARIANTS, gemm_rates  # bench/precision.py

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared"
DEFAULT_INPUT = SHARED / "audio" / "clmr_demo"
SHORT = SHARED / "audio" / "medley_solos_subset" / "audio"  # 3 s files: start-up
BATCH = 16  # windows per model call, extract's default
REF = "onnxruntime:fp32"


def _child(kind: str, arguments: dict[str, Any]) -> dict[str, Any]:
    cmd = [sys.executable, str(HERE / "extract_runs.py"), kind, json.dumps(arguments)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1][:200]}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _corun(model: dict[str, Any], decode: dict[str, Any]) -> dict[str, Any]:
    """The model alone and the decoder alone, at once in two processes (each set up first, then
    started together): what the machine gives two independent jobs sharing its cores."""
    script = str(HERE / "extract_runs.py")
    children = [
        subprocess.Popen(
            [sys.executable, script, kind, json.dumps({**args, "corun": True})],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for kind, args in (("model", model), ("decode", decode))
    ]
    for child in children:  # each says "ready" once set up; one that failed says nothing
        assert child.stdout is not None
        if child.stdout.readline().strip() != "ready":
            for other in children:
                other.kill()
            err = child.communicate()[1]
            return {"error": (err.strip().splitlines() or ["failed"])[-1][:200]}
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    results = []
    for child in children:
        out, err = child.communicate()
        if child.returncode != 0:
            return {"error": (err.strip().splitlines() or ["failed"])[-1][:200]}
        results.append(json.loads(out.strip().splitlines()[-1]))
    walls = [r["wall_s"] for r in results]
    return {"audio_s": results[0]["audio_s"], "wall_s": max(walls), "model_s": walls[0],
            "decode_s": walls[1]}  # fmt: skip


def _timed(cmd: list[str]) -> float:
    began = time.perf_counter()
    subprocess.run(cmd, capture_output=True, check=False)
    return time.perf_counter() - began


def _pair(path: str) -> dict[str, str]:
    engine, precision = path.split(":")
    return {"engine": engine, "precision": precision}


def _setting(text: str) -> dict[str, Any]:
    """WORKERS:THREADS:SPIN[:CHUNK[:PIN[:NICE[:BATCH]]]]: WORKERS a count or auto (extract's
    default), SPIN and PIN on, off or auto (the default); BATCH auto: --batch."""
    fields = text.split(":") + ["auto", "auto", "0", "auto"]
    workers, threads, spin, chunk, pin, nice, batch = fields[:7]
    flag = {"on": True, "off": False, "auto": None}
    count = None if workers == "auto" else int(workers)
    setting = {"workers": count, "threads": int(threads), "spin": flag[spin],
               "chunk": None if chunk == "auto" else int(chunk), "pin": flag[pin],
               "nice": int(nice)}  # fmt: skip
    return setting if batch == "auto" else {**setting, "batch": int(batch)}


def _startup(args: argparse.Namespace, path: str, short: str) -> float:
    cli = [sys.executable, "-m", "clmr_embed", "extract"]
    pair = _pair(path)
    with tempfile.TemporaryDirectory() as tmp:
        return _timed(cli + [short, f"{tmp}/s.h5", "--model", args.model, "--precision",
                             pair["precision"], "--engine", pair["engine"]])  # fmt: skip


def _plan(args: argparse.Namespace, common: dict[str, Any]) -> list[tuple[str, str, dict]]:
    """(row name, kind, arguments) of every measurement of one repetition."""
    plan = [("decode", "decode", {**common, "workers": args.decode_workers})]
    for path in args.paths:
        plan.append((f"model {path}", "model", {**common, **_pair(path), "threads": 0}))
        plan.append((f"corun {path}", "corun", {**common, **_pair(path), "threads": 0,
                                                "workers": args.decode_workers}))  # fmt: skip
        for text in args.e2e:
            plan.append((f"e2e {path} {text}", "e2e", {**common, **_pair(path), **_setting(text)}))
    if args.original:
        plan += [(kind, kind, {**common, "threads": 0}) for kind in ("torch", "torch-b1")]
    return plan


def measure(args: argparse.Namespace, files: list[str], tmp: Path) -> dict[str, Any]:
    warm = {p: _child("warm", {"model": args.model, **_pair(p), "threads": 0}) for p in args.paths}
    info = warm[args.paths[0]]
    if "error" in info:
        raise SystemExit(f"{args.paths[0]}: {info['error']}")
    windows, audio_s = decoded_windows(files, info["rate"], info["window"])
    np.save(tmp / "windows.npy", windows)
    common = {"model": args.model, "files": files, "rate": info["rate"],
              "window": info["window"], "windows": str(tmp / "windows.npy"), "audio_s": audio_s,
              "batch": args.batch}  # fmt: skip
    short = sorted(str(p) for p in SHORT.rglob("*.flac"))[:1] or [min(files, key=os.path.getsize)]
    runs: dict[str, list[dict[str, Any]]] = {}
    for rep in range(args.reps):
        plan = _plan(args, common)
        for name, kind, arguments in plan if rep % 2 == 0 else plan[::-1]:
            result = _corun(arguments, arguments) if kind == "corun" else _child(kind, arguments)
            runs.setdefault(name, []).append(result)
            print(f"  rep {rep} {name}: {result}", file=sys.stderr, flush=True)
        help_cmd = [sys.executable, "-m", "clmr_embed", "--help"]
        runs.setdefault("startup --help", []).append({"wall_s": _timed(help_cmd)})
        for path in args.paths:
            wall = _startup(args, path, short[0])
            runs.setdefault(f"startup {path}", []).append({"wall_s": wall})
    return {"warm": warm, "runs": runs, "audio_s": audio_s, "windows": len(windows),
            "short": short[0]}  # fmt: skip


def _best(results: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in results if "error" not in r]
    if not ok:
        return results[0]
    best = min(ok, key=lambda r: r["wall_s"])
    return {**best, "x": best["audio_s"] / best["wall_s"] if "audio_s" in best else None,
            "all_x": [r["audio_s"] / r["wall_s"] for r in ok if "audio_s" in r],
            # e2e only: x over the embedding phase (after start-up, before the last commit)
            "x_embedding": max((r["audio_s"] / r["embedding_s"] for r in ok
                                if r.get("embedding_s")), default=None),
            "peak_rss_mb": max(r.get("peak_rss_mb", 0) for r in ok)}  # fmt: skip


def summarise(args: argparse.Namespace, measured: dict[str, Any]) -> dict[str, Any]:
    rows = {name: _best(results) for name, results in measured["runs"].items()}
    decodes = [r for r in measured["runs"]["decode"] if "cpu_s" in r]
    cpu_s = min(r["cpu_s"] for r in decodes) if decodes else None
    # The decoder's cost on all cores: audio over its CPU seconds, times the cores. Its wall
    # time with all workers adds the workers' start and the tail of the longest file.
    d = (os.cpu_count() or 1) * measured["audio_s"] / cpu_s if cpu_s else None
    rows["decode"]["x_cpu"] = d
    rows["decode"]["x_from_first"] = max(r["audio_s"] / r["from_first_s"] for r in decodes)
    paths: dict[str, Any] = {}
    for path in args.paths:
        m = rows[f"model {path}"].get("x")
        b = 1 / (1 / m + 1 / d) if m and d else None
        e2e = {t: rows[f"e2e {path} {t}"] for t in args.e2e}
        c = rows[f"corun {path}"].get("x")
        startup = rows[f"startup {path}"]["wall_s"]
        short_s = float(_probe_seconds(measured["short"]))
        paths[path] = {"ran": measured["warm"][path].get("ran"), "M": m, "B": b, "e2e": e2e,
                       "C": c, "C/B": c / b if c and b else None,
                       "E/B": {t: r.get("x") / b if b and r.get("x") else None
                               for t, r in e2e.items()},
                       "E_embedding/B": {t: r["x_embedding"] / b
                                         if b and r.get("x_embedding") else None
                                         for t, r in e2e.items()},
                       "startup_s": startup,
                       "startup_overhead_s": startup - short_s / b if b else None}  # fmt: skip
    return {"D": d, "rows": rows, "paths": paths, "help_s": rows["startup --help"]["wall_s"]}


def _probe_seconds(path: str) -> float:
    from clmr_embed.audio import probe

    return probe(Path(path)).duration_s


def _ratio(x: float | None, base: float | None) -> str:
    return f"{x / base:6.2f}" if x and base else f"{'-':>6}"


def table(args: argparse.Namespace, s: dict[str, Any], measured: dict[str, Any]) -> None:
    d, paths = s["D"], s["paths"]
    print(
        f"{len(measured['runs']['decode'])} reps, {measured['audio_s'] / 60:.1f} min audio, "
        f"{measured['windows']} windows, {os.cpu_count()} CPUs; x real time, best of the reps"
    )
    dec = s["rows"]["decode"]
    rss = dec.get("workers_rss_mb", 0)
    print(f"D decode only: {d:.1f}x from its CPU time on {os.cpu_count()} cores (the bound's D); "
          f"wall with {args.decode_workers} workers {dec['x']:.1f}x, from the first message "
          f"{dec['x_from_first']:.1f}x; workers' peak RSS {rss:.0f} MB")  # fmt: skip
    ref = paths.get(REF, {})
    ref_e = {t: r.get("x") for t, r in ref.get("e2e", {}).items()}
    print(f"{'path':<20} {'ran':<5} {'M':>7} {'M/ref':>6} {'B':>7} {'e2e W:T:SPIN':<13} "
          f"{'E':>7} {'E/B':>5} {'Eemb':>7} {'/B':>5} {'E/ref':>6} {'RSS MB':>7} "
          f"{'wkr MB':>6}")  # fmt: skip
    for path, p in paths.items():
        for t, r in p["e2e"].items():
            if "error" in r:
                print(f"{path:<20} {t:<13} failed: {r['error']}")
                continue
            eb = p["E/B"][t]
            print(f"{path:<20} {p['ran'] or '-':<5} {p['M'] or 0:6.1f}x "
                  f"{_ratio(p['M'], ref.get('M'))} "
                  f"{p['B'] or 0:6.1f}x {t:<13} {r['x']:6.1f}x {eb or 0:5.2f} "
                  f"{r.get('x_embedding') or 0:6.1f}x {p['E_embedding/B'][t] or 0:5.2f} "
                  f"{_ratio(r['x'], ref_e.get(t))} {r['peak_rss_mb']:7.0f} "
                  f"{r.get('workers_rss_mb', 0):6.0f}")  # fmt: skip
    print(
        "C co-run (the model alone and the decoder alone at once, two processes): "
        + ", ".join(f"{k} {p['C'] or 0:.1f}x = {p['C/B'] or 0:.2f} B" for k, p in paths.items())
    )
    print(f"start-up: `clmr-embed --help` {s['help_s']:.2f} s; `extract` on "
          f"{Path(measured['short']).name}: " + ", ".join(
              f"{k} {p['startup_s']:.2f} s (overhead {p['startup_overhead_s'] or 0:.2f} s)"
              for k, p in paths.items()))  # fmt: skip
    for kind in ("torch", "torch-b1"):
        if kind in s["rows"]:
            print(
                f"original {kind}: {s['rows'][kind].get('x', 0):.1f}x, "
                f"{s['rows'][kind]['peak_rss_mb']:.0f} MB"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="*", type=Path, default=[DEFAULT_INPUT])
    parser.add_argument("--model", default=None, help="ONNX model (default: the bundled one)")
    parser.add_argument("--songs", type=int, default=0, help="only the first N files (0: all)")
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--batch", type=int, default=BATCH)
    parser.add_argument("--paths", default=",".join(f"{e}:{p}" for e, p in VARIANTS))
    parser.add_argument("--e2e", action="append", help="WORKERS:THREADS:SPIN (default 1:0:auto)")
    parser.add_argument("--decode-workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", type=Path, default=Path("extract-bench.json"))
    parser.add_argument("--no-gemm", action="store_true", help="skip the GEMM rate probe")
    parser.add_argument("--original", action="store_true", help="also the torch pipeline")
    parser.add_argument("--note", default="", help="recorded in the JSON (e.g. quiet/contended)")
    args = parser.parse_args()
    args.paths, args.e2e = args.paths.split(","), args.e2e or ["1:0:auto"]
    from clmr_embed.resolution import resolve_model
    from clmr_embed.scan import find_audio_files

    args.model = str(resolve_model(args.model))
    files = sorted(str(f.path) for f in find_audio_files(args.inputs))
    files = files[: args.songs] if args.songs > 0 else files
    rates = {} if args.no_gemm else gemm_rates(0)
    if rates:
        print("GEMM 1024^3 (OpenVINO, this run): "
              + ", ".join(f"{k} {v:.0f} GOP/s" for k, v in rates.items()), flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        measured = measure(args, files, Path(tmp))
    summary = summarise(args, measured)
    table(args, summary, measured)
    commit = subprocess.run(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True, check=False).stdout.strip()  # fmt: skip
    record = {"command": " ".join(sys.argv), "commit": commit, "note": args.note,
              "when": time.strftime("%Y-%m-%d %H:%M"), "cpu": platform.processor(),
              "cpus": os.cpu_count(), "files": files, "gemm_gops": rates, **summary,
              "audio_s": measured["audio_s"], "runs": measured["runs"]}  # fmt: skip
    args.json.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

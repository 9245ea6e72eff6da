"""The teacher's own linear-probe accuracy on GTZAN and Medley-solos, on the install gate's folds.

    python -m tools.teacher_probe [--weights ../shared/weights] [--output max_pool]

The distilled encoders learn musicnn's features, so musicnn's own score on the same probes is
the ceiling their recipe aims at: each window's feature is the teacher's output on the 3-s patch
centred on it (as in tools.unseen_probe), and the probe is the one `tools.install_gate` runs
(`train linear`'s head, k-fold x 2, seed 0) on those features instead of an encoder's.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from clmr_embed.audio import resample
from clmr_embed.constants import SAMPLE_RATE, WINDOW_SAMPLES
from tools.install_gate import GTZAN, MEDLEY
from tools.unseen_probe import WEIGHTS
from training.linear.baselines import audio_windows
from training.linear.config import LinearEvalConfig
from training.linear.dataset import keep_existing
from training.linear.features import Features
from training.linear.labels import read_labels
from training.linear.probe import run_linear_eval
from training.pretrain.teacher import TEACHER_RATE, Teacher, centred_patches


def teacher_features(teacher: Teacher, paths: Sequence[Path], output: str) -> Features:
    """The teacher's `output` on the patch centred on each window of each file."""
    found: list[npt.NDArray[np.float32]] = []
    for windows in audio_windows(paths):
        frames = teacher.logmel(resample(windows.reshape(-1), SAMPLE_RATE, TEACHER_RATE))
        centres = (np.arange(len(windows)) * WINDOW_SAMPLES + WINDOW_SAMPLES / 2) / SAMPLE_RATE
        found.append(teacher.run(centred_patches(frames, centres), output).astype(np.float32))
    return Features(tuple(found))


def accuracy(teacher: Teacher, labels: Path, folds: int, output: str) -> float:
    """Mean accuracy over folds x 2 (seed 0), as tools.install_gate.linear_accuracy."""
    data, _ = keep_existing(read_labels(labels))
    features = teacher_features(teacher, data.paths, output)
    config = LinearEvalConfig(split="kfold", folds=folds, repeats=2, seed=0)
    result = run_linear_eval(features, data, config)
    return float(np.mean([f.metrics["accuracy"] for f in result.folds]))


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: prints {"gtzan_accuracy", "medley_accuracy"} as JSON."""
    parser = argparse.ArgumentParser(prog="python -m tools.teacher_probe", description=__doc__)
    parser.add_argument("--weights", type=Path, default=WEIGHTS, help="musicnn ONNX folder")
    parser.add_argument("--output", default="max_pool", help="the teacher's output to probe")
    args = parser.parse_args(argv)
    teacher = Teacher(args.weights, threads=0)
    scores = {
        "gtzan_accuracy": accuracy(teacher, GTZAN, 5, args.output),
        "medley_accuracy": accuracy(teacher, MEDLEY, 3, args.output),
    }
    print(json.dumps(scores))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The install gate of the default model: a candidate ships only if no probe says it is worse.

    python -m tools.install_gate runs/x/latest.pt [MORE.pt...] --corpus /work/data/free-music

Two probes, the same for candidate and installed model, computed side by side in one run:
GTZAN linear-probe accuracy (5-fold x 2, seed 0: the folds of bench/evaluate.sh) and same-track
excerpt-retrieval MRR on the held-out free-music packages (tools.unseen_probe). A candidate must
reach at least the installed model's value on each (`verdict`); `tools.default_model --install`
refuses otherwise. Beside the verdict the report gives each difference with its paired standard
error (fold by fold, query by query), so a reader sees which differences are noise.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from export.linear import LinearExport
from tools.unseen_probe import excerpts, holdout_files, probe
from training.linear.config import LinearEvalConfig, LinearRunConfig
from training.linear.run import run_linear

ROOT = Path(__file__).resolve().parents[1]
INSTALLED = ROOT / "checkpoints" / "clmr-free.pt"
GTZAN = ROOT.parent / "shared" / "audio" / "gtzan_subset" / "labels.csv"
MEDLEY = ROOT.parent / "shared" / "audio" / "medley_solos_subset" / "labels.csv"


@dataclass(frozen=True)
class GateScores:
    """What the gate compares, higher is better for both."""

    gtzan_accuracy: float  # mean over the 5 x 2 folds
    holdout_mrr: float  # same-track excerpt retrieval on the held-out packages


@dataclass(frozen=True)
class ProbeValues:
    """The values the gate's means come from, paired across models (same folds, same queries)."""

    gtzan_folds: npt.NDArray[np.float64]  # accuracy of each of the 5 x 2 folds
    holdout_ranks: npt.NDArray[np.float64] = field(repr=False)  # 1 / rank of each query

    def scores(self) -> GateScores:
        return GateScores(float(self.gtzan_folds.mean()), float(self.holdout_ranks.mean()))


def paired_difference(
    candidate: npt.NDArray[np.float64], installed: npt.NDArray[np.float64]
) -> dict[str, float]:
    """Mean of candidate - installed and its standard error over the pairs.

    For the folds the error is a lower bound: 5-fold x 2 folds share training data, so they are
    not independent.
    """
    d = np.asarray(candidate, dtype=np.float64) - np.asarray(installed, dtype=np.float64)
    se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
    return {"difference": float(d.mean()), "se": se}


def noise(candidate: ProbeValues, installed: ProbeValues) -> dict[str, dict[str, float]]:
    """Each probe's paired difference (candidate - installed) with its standard error."""
    return {
        "gtzan_accuracy": paired_difference(candidate.gtzan_folds, installed.gtzan_folds),
        "holdout_mrr": paired_difference(candidate.holdout_ranks, installed.holdout_ranks),
    }


def verdict(candidate: GateScores, installed: GateScores) -> list[str]:
    """Why the candidate may not replace the installed model; empty when it may."""
    reasons = []
    for name, new in asdict(candidate).items():
        old = getattr(installed, name)
        if new < old:
            reasons.append(f"{name} {new:.3f} < installed {old:.3f}")
    return reasons


def linear_accuracy(checkpoint: Path, labels: Path, folds: int = 5, repeats: int = 2) -> float:
    """Linear-probe accuracy (mean over folds x repeats, seed 0) of an encoder on a labelled set."""
    return float(fold_accuracies(checkpoint, labels, folds, repeats).mean())


def fold_accuracies(
    checkpoint: Path, labels: Path, folds: int = 5, repeats: int = 2
) -> npt.NDArray[np.float64]:
    """Linear-probe accuracy of each of the folds x repeats (seed 0), in fold order."""
    with tempfile.TemporaryDirectory() as run_dir:
        config = LinearRunConfig(
            encoder=str(checkpoint),
            labels=labels,
            output_dir=Path(run_dir),
            probe=LinearEvalConfig(split="kfold", folds=folds, repeats=repeats, seed=0),
            tagger=False,  # only the score is wanted
        )
        result = run_linear(config, LinearExport())
    return np.array([f.metrics["accuracy"] for f in result.results[0].folds], dtype=np.float64)


def gtzan_accuracy(checkpoint: Path, labels: Path = GTZAN) -> float:
    """Linear-probe accuracy on the GTZAN subset, the folds of bench/evaluate.sh (5 x 2)."""
    return linear_accuracy(checkpoint, labels)


def medley_accuracy(checkpoint: Path, labels: Path = MEDLEY) -> float:
    """Linear-probe accuracy on the Medley-solos subset, the folds of bench/evaluate.sh (3 x 2)."""
    return linear_accuracy(checkpoint, labels, folds=3)


def probe_values(checkpoints: Sequence[Path], corpus: Path) -> dict[Path, ProbeValues]:
    """Both probes for each checkpoint, fold by fold and query by query (the held-out excerpts
    decoded once)."""
    pairs = excerpts(holdout_files(corpus))
    ranks = probe([str(c) for c in checkpoints], pairs)
    return {c: ProbeValues(fold_accuracies(c, GTZAN), ranks[str(c)]) for c in checkpoints}


def scores(checkpoints: Sequence[Path], corpus: Path) -> dict[Path, GateScores]:
    """Both probes' means for each checkpoint."""
    return {c: v.scores() for c, v in probe_values(checkpoints, corpus).items()}


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: each candidate's scores and verdict beside the installed model's, as JSON;
    exit 1 when every candidate is refused."""
    parser = argparse.ArgumentParser(prog="python -m tools.install_gate", description=__doc__)
    parser.add_argument("candidates", type=Path, nargs="+", help="pre-training checkpoints")
    parser.add_argument("--corpus", required=True, type=Path, help="free-music folder")
    parser.add_argument("--installed", type=Path, default=INSTALLED, help="the model it replaces")
    args = parser.parse_args(argv)
    values = probe_values([*args.candidates, args.installed], args.corpus)
    installed = values[args.installed]
    report: dict[str, Any] = {"installed": asdict(installed.scores()), "candidates": {}}
    for path in args.candidates:
        candidate = values[path]
        report["candidates"][str(path)] = {
            "scores": asdict(candidate.scores()),
            "paired": noise(candidate, installed),  # candidate - installed, with its error
            "refused": verdict(candidate.scores(), installed.scores()),
        }
    print(json.dumps(report, indent=1))
    return 0 if any(not c["refused"] for c in report["candidates"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())

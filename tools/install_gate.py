"""The install gate of the default model: a candidate ships only if no probe says it is worse.

    python -m tools.install_gate runs/x/latest.pt --corpus /work/data/free-music

Two probes, the same for candidate and installed model, computed side by side in one run:
GTZAN linear-probe accuracy (5-fold x 2, seed 0: the folds of bench/evaluate.sh) and same-track
excerpt-retrieval MRR on the held-out free-music packages (tools.unseen_probe). A candidate must
reach at least the installed model's value on each (`verdict`); `tools.default_model --install`
refuses otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

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
    with tempfile.TemporaryDirectory() as run_dir:
        config = LinearRunConfig(
            encoder=str(checkpoint),
            labels=labels,
            output_dir=Path(run_dir),
            probe=LinearEvalConfig(split="kfold", folds=folds, repeats=repeats, seed=0),
            tagger=False,  # only the score is wanted
        )
        result = run_linear(config, LinearExport())
    return float(result.to_dict()["results"][0]["accuracy"]["mean"])


def gtzan_accuracy(checkpoint: Path, labels: Path = GTZAN) -> float:
    """Linear-probe accuracy on the GTZAN subset, the folds of bench/evaluate.sh (5 x 2)."""
    return linear_accuracy(checkpoint, labels)


def medley_accuracy(checkpoint: Path, labels: Path = MEDLEY) -> float:
    """Linear-probe accuracy on the Medley-solos subset, the folds of bench/evaluate.sh (3 x 2)."""
    return linear_accuracy(checkpoint, labels, folds=3)


def scores(checkpoints: Sequence[Path], corpus: Path) -> dict[Path, GateScores]:
    """Both probes for each checkpoint (the held-out excerpts decoded once)."""
    pairs = excerpts(holdout_files(corpus))
    mrr = probe([str(c) for c in checkpoints], pairs)
    return {c: GateScores(gtzan_accuracy(c), mrr[str(c)]) for c in checkpoints}


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: print both models' scores and the verdict as JSON; exit 1 if refused."""
    parser = argparse.ArgumentParser(prog="python -m tools.install_gate", description=__doc__)
    parser.add_argument("candidate", type=Path, help="pre-training checkpoint to judge")
    parser.add_argument("--corpus", required=True, type=Path, help="free-music folder")
    parser.add_argument("--installed", type=Path, default=INSTALLED, help="the model it replaces")
    args = parser.parse_args(argv)
    found = scores([args.candidate, args.installed], args.corpus)
    reasons = verdict(found[args.candidate], found[args.installed])
    report = {
        "candidate": asdict(found[args.candidate]),
        "installed": asdict(found[args.installed]),
        "refused": reasons,
    }
    print(json.dumps(report, indent=1))
    return 1 if reasons else 0


if __name__ == "__main__":
    sys.exit(main())

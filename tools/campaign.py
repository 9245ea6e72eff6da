"""A long training run in probed chunks: train, probe, keep the best by the gate, stop on a plateau.

    nice python -m tools.campaign /work/runs/whole-from-r1 --data /work/data/free-music/train.txt \
        --corpus /work/data/free-music --config configs/distill-clean.toml \
        --init ../shared/weights/candidates/clmr-distill-gpu-r1.pt --lr 1e-4 --cache-dir DIR \
        [--head-warmup-steps 300] [--anchor-weight 1.0] [--keep-probed]

Each chunk is one `clmr-embed train pretrain --stop-at-step N [--resume]` process (killed or
stopped at any moment, the next call resumes from the last checkpoint); after each chunk of
--probe-windows the latest weights are probed (held-out music MRR plain and centred, GTZAN and
Medley linear probes) into RUN/probes.jsonl, and RUN/best-gate.pt is replaced only when the new
weights pass the install gate against it (no probe worse). The campaign ends at the config's
last step or after --patience probes without a new best. Rerun the same command to continue.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from clmr_embed.atomic import write_text
from tools.install_gate import GateScores, gtzan_accuracy, medley_accuracy, verdict
from tools.unseen_probe import excerpts, holdout_files, probe_both
from training.pretrain.config import load_pretrain_config, write_config
from training.pretrain.state import LATEST
from training.weights import load_checkpoint

PROBES = "probes.jsonl"
BEST = "best-gate.pt"
PROBED = "probed"  # with --keep-probed: every probed checkpoint, as step-N.pt (~34 MB each)


def chunk_config(args: argparse.Namespace) -> Path:
    """The run's config (the TOML plus the flags that override it), written once into the run."""
    path = args.run / "campaign.toml"
    if not path.exists():
        overrides: dict[str, Any] = {"cache_dir": str(args.cache_dir or "")}
        if args.init:
            overrides["init_weights"] = str(args.init)
        if args.lr:
            overrides["lr"] = args.lr
        if args.head_warmup_steps:
            overrides["head_warmup_steps"] = args.head_warmup_steps
        if args.anchor_weight:
            overrides["anchor_weight"] = args.anchor_weight
        args.run.mkdir(parents=True, exist_ok=True)
        write_config(path, load_pretrain_config(args.config, overrides))
    return path


def train_until(args: argparse.Namespace, config: Path, step: int) -> None:
    """One chunk: the CLI in its own process, resuming when the run has a checkpoint."""
    command = [str(Path(sys.executable).parent / "clmr-embed"), "train", "pretrain"]
    command += [*map(str, args.data), "--output-dir", str(args.run), "--config", str(config)]
    command += ["--stop-at-step", str(step)]
    if (args.run / LATEST).exists():
        command.append("--resume")
    subprocess.run(command, check=True)


def probe_checkpoint(checkpoint: Path, pairs: list[Any]) -> dict[str, float]:
    """Every probe of one checkpoint; the gate reads gtzan_accuracy and holdout_mrr."""
    mrr = probe_both([str(checkpoint)], pairs)[str(checkpoint)]
    return {
        "gtzan_accuracy": gtzan_accuracy(checkpoint),
        "holdout_mrr": mrr["centred"],
        "holdout_mrr_plain": mrr["plain"],
        "medley_accuracy": medley_accuracy(checkpoint),
    }


def gate_scores(row: dict[str, Any]) -> GateScores:
    return GateScores(row["gtzan_accuracy"], row["holdout_mrr"])


def read_probes(run: Path) -> list[dict[str, Any]]:
    path = run / PROBES
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def record(run: Path, row: dict[str, Any], keep: bool = False) -> bool:
    """Append the row; copy latest.pt to best-gate.pt when it passes the gate against the best,
    and to probed/step-N.pt when `keep` (latest.pt moves on: a probed checkpoint that the gate
    refuses is otherwise lost, e.g. for tools.interpolate or a later gate)."""
    rows = read_probes(run)
    if keep:
        (run / PROBED).mkdir(exist_ok=True)
        shutil.copyfile(run / LATEST, run / PROBED / f"step-{row['step']}.pt")
    best = next((r for r in reversed(rows) if r.get("best")), None)
    row["best"] = best is None or not verdict(gate_scores(row), gate_scores(best))
    if row["best"]:
        shutil.copyfile(run / LATEST, run / BEST)
    write_text(run / PROBES, "".join(json.dumps(r) + "\n" for r in [*rows, row]))
    return bool(row["best"])


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: chunks until the end of the schedule or a plateau; one JSON line per probe."""
    parser = argparse.ArgumentParser(prog="python -m tools.campaign", description=__doc__)
    parser.add_argument("run", type=Path, help="run folder")
    parser.add_argument("--data", type=Path, nargs="+", required=True, help="training audio")
    parser.add_argument("--corpus", type=Path, required=True, help="free-music folder (probe)")
    parser.add_argument("--config", type=Path, required=True, help="pre-training TOML")
    parser.add_argument("--init", type=Path, help="checkpoint to start from (else random init)")
    parser.add_argument("--lr", type=float, default=0.0, help="peak lr (default: the config's)")
    parser.add_argument("--cache-dir", type=Path, help="audio cache root")
    parser.add_argument(
        "--head-warmup-steps", type=int, default=0, help="steps that train the fresh head alone"
    )
    parser.add_argument(
        "--anchor-weight", type=float, default=0.0, help="weight of the term that stays near --init"
    )
    parser.add_argument("--probe-windows", type=int, default=50_000, help="windows per chunk")
    parser.add_argument(
        "--keep-probed", action="store_true", help="keep every probed checkpoint in RUN/probed"
    )
    parser.add_argument("--patience", type=int, default=3, help="probes without a new best")
    args = parser.parse_args(argv)
    config_path = chunk_config(args)
    config = load_pretrain_config(config_path)
    chunk = max(1, args.probe_windows // (config.batch_size * config.windows_per_example))
    pairs = excerpts(holdout_files(args.corpus))
    while True:
        rows = read_probes(args.run)
        done = rows[-1]["step"] if rows else 0
        if done >= config.max_steps or _plateau(rows, args.patience):
            print(f"campaign over at step {done}: see {args.run / PROBES}", file=sys.stderr)
            return 0
        step = min(done + chunk, config.max_steps)
        train_until(args, config_path, step)
        latest = args.run / LATEST
        row = {"step": load_checkpoint(latest).step, **probe_checkpoint(latest, pairs)}
        row["windows"] = row["step"] * config.batch_size * config.windows_per_example
        record(args.run, row, keep=args.keep_probed)
        print(json.dumps(row), flush=True)


def _plateau(rows: list[dict[str, Any]], patience: int) -> bool:
    last_best = max((i for i, r in enumerate(rows) if r.get("best")), default=-1)
    return len(rows) - 1 - last_best >= patience


if __name__ == "__main__":
    sys.exit(main())

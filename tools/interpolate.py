"""Weight-space interpolation of a starting checkpoint and its fine-tuned descendant (WiSE-FT).

    python -m tools.interpolate START.pt FINETUNED.pt --alpha 0.25 0.5 --out-dir DIR

Each alpha writes DIR/alpha-0.25.pt whose encoder is (1 - alpha) * START + alpha * FINETUNED,
tensor by tensor (BatchNorm running statistics too; integer counters come from FINETUNED).
Wortsman et al. 2022 ("Robust fine-tuning of zero-shot models") found such midpoints keep most of
what the start knew while gaining most of what the fine-tuning taught, because both ends lie in
one basin when one is fine-tuned from the other. Here the start is the shipped candidate (good at
track identity) and the fine-tuned end the whole-corpus run (good at genre): the probes of the
midpoints say whether one keeps both.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from clmr_embed.errors import CheckpointError
from training.checkpoint import Checkpoint, StateDict, save_checkpoint, weights_only
from training.weights import load_checkpoint


def mix_states(start: StateDict, finetuned: StateDict, alpha: float) -> StateDict:
    """(1 - alpha) * start + alpha * finetuned for floating tensors; others from `finetuned`.

    Raises:
        CheckpointError: the two states do not have the same tensors and shapes.
    """
    if start.keys() != finetuned.keys():
        missing = sorted(set(start) ^ set(finetuned))[:3]
        raise CheckpointError(f"the two encoders differ in their tensors ({', '.join(missing)})")
    mixed: StateDict = {}
    for name, end in finetuned.items():
        begin = start[name]
        if begin.shape != end.shape:
            raise CheckpointError(
                f"{name}: shape {tuple(begin.shape)} vs {tuple(end.shape)}; "
                "interpolate a run with the checkpoint it started from"
            )
        if end.is_floating_point():
            mixed[name] = torch.lerp(begin.to(end.dtype), end, alpha)
        else:  # BatchNorm's num_batches_tracked: a counter, not a weight
            mixed[name] = end.clone()
    return mixed


def interpolate(start: Checkpoint, finetuned: Checkpoint, alpha: float) -> Checkpoint:
    """The fine-tuned checkpoint with its encoder moved back toward `start` by 1 - alpha."""
    if start.encoder_state is None or finetuned.encoder_state is None:
        raise CheckpointError("both checkpoints need encoder weights (pre-training checkpoints)")
    if not 0.0 <= alpha <= 1.0:
        raise CheckpointError(f"alpha {alpha} is outside [0, 1]; pass a share of the fine-tuning")
    kept = weights_only(
        finetuned,
        interpolated={"start": start.source, "finetuned": finetuned.source, "alpha": alpha},
    )
    return dataclasses.replace(
        kept,
        encoder_state=mix_states(start.encoder_state, finetuned.encoder_state, alpha),
        head_state=None,  # the distillation head belongs to the fine-tuned end only
        head_config=None,
        source=f"WiSE-FT alpha {alpha:g} of {start.source} -> {finetuned.source}",
    )


def out_path(out_dir: Path, alpha: float) -> Path:
    return out_dir / f"alpha-{alpha:.2f}.pt"


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: one checkpoint per alpha; prints their paths as JSON."""
    parser = argparse.ArgumentParser(prog="python -m tools.interpolate", description=__doc__)
    parser.add_argument("start", type=Path, help="the checkpoint the run started from")
    parser.add_argument("finetuned", type=Path, help="a checkpoint of that run")
    parser.add_argument("--alpha", type=float, nargs="+", required=True, help="shares in [0, 1]")
    parser.add_argument("--out-dir", type=Path, required=True, help="where to write them")
    args = parser.parse_args(argv)
    start, finetuned = load_checkpoint(args.start), load_checkpoint(args.finetuned)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for alpha in args.alpha:
        path = out_path(args.out_dir, alpha)
        save_checkpoint(path, interpolate(start, finetuned, alpha))
        written[f"{alpha:g}"] = str(path)
    print(json.dumps(written, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

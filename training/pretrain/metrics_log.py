"""Training progress: tqdm bar on stderr, metrics.jsonl, a PNG loss curve, optional TensorBoard."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from clmr_embed.atomic import atomic_path, write_text

METRICS_FILE = "metrics.jsonl"
CURVE_FILE = "loss.png"


class MetricsLog:
    """Rank 0's record of a run; on other ranks (`write=False`) every method does nothing.

    On resume, lines past the resumed step (written after the last checkpoint by the interrupted
    run) are dropped, so metrics.jsonl reads as one uninterrupted run.

    Args:
        output_dir: run folder.
        start_step: first step of this call (the resumed step, or 0).
        total_steps: steps of the whole run, for the bar.
        enabled: show the tqdm bar.
        write: write files (rank 0).
        wall_offset: wall seconds already spent before a resume.
    """

    def __init__(
        self,
        output_dir: Path,
        start_step: int,
        total_steps: int,
        *,
        enabled: bool,
        write: bool,
        wall_offset: float = 0.0,
    ) -> None:
        self.path = Path(output_dir) / METRICS_FILE
        self.curve = Path(output_dir) / CURVE_FILE
        self.write = write
        self.started = time.perf_counter() - wall_offset
        self.bar = tqdm(
            total=total_steps,
            initial=start_step,
            desc="pretrain",
            unit="step",
            file=sys.stderr,
            disable=not enabled,
            dynamic_ncols=True,
        )
        self.board = _summary_writer(output_dir) if write else None
        if write:
            kept = [r for r in read_metrics(self.path) if r["step"] <= start_step]
            write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))

    def wall_seconds(self) -> float:
        """Seconds since the run began, earlier (resumed) parts included."""
        return time.perf_counter() - self.started

    def advance(self) -> None:
        """One optimiser step done."""
        self.bar.update(1)

    def record(
        self,
        step: int,
        loss: float,
        lr: float,
        clips_per_s: float,
        terms: list[float] | None = None,
    ) -> None:
        """Append one metrics line; `clips_per_s` counts windows (two per pair) per second.

        `terms` are (NT-Xent, teacher) means when distilling, (NT-Xent, teacher, anchor) with an
        anchor: the parts of `loss` are logged.
        """
        self.bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", clips_s=f"{clips_per_s:.1f}")
        if not self.write:
            return
        row = {
            "step": step,
            "loss": loss,
            "lr": lr,
            "clips_per_s": clips_per_s,
            "wall_s": round(self.wall_seconds(), 3),
        }
        if terms is not None:
            row["nt_xent"], row["teacher"], *anchor = terms
            if anchor:
                row["anchor"] = anchor[0]
        with open(self.path, "a") as handle:
            handle.write(json.dumps(row) + "\n")
        if self.board is not None:
            for key in ("loss", "lr", "clips_per_s"):
                self.board.add_scalar(f"pretrain/{key}", row[key], step)

    def record_validation(self, step: int, mse: float) -> None:
        """Append a validation line: {"step", "val_mse", "wall_s"} (held-out crops' MSE)."""
        self.bar.set_postfix(val_mse=f"{mse:.4f}")
        if not self.write:
            return
        row = {"step": step, "val_mse": mse, "wall_s": round(self.wall_seconds(), 3)}
        with open(self.path, "a") as handle:
            handle.write(json.dumps(row) + "\n")
        if self.board is not None:
            self.board.add_scalar("pretrain/val_mse", mse, step)

    def plot(self) -> None:
        """Write loss.png from metrics.jsonl (matplotlib's Agg backend: no display needed)."""
        if not self.write:
            return
        rows = [r for r in read_metrics(self.path) if "loss" in r]  # not validation lines
        if not rows:
            return
        from matplotlib.figure import Figure  # local: matplotlib is slow to import

        figure = Figure(figsize=(6, 3.5))
        axes = figure.add_subplot()
        axes.plot([r["step"] for r in rows], [r["loss"] for r in rows])
        axes.set(xlabel="step", ylabel="training loss", title="pre-training loss")
        axes.grid(alpha=0.3)
        figure.tight_layout()
        with atomic_path(self.curve) as tmp:  # Figure without pyplot renders with Agg
            figure.savefig(tmp, dpi=100, format="png")

    def close(self) -> None:
        """Close the bar and the TensorBoard writer."""
        self.bar.close()
        if self.board is not None:
            self.board.close()


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The rows of a metrics.jsonl file ([] when it does not exist)."""
    if not Path(path).exists():
        return []
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def _summary_writer(output_dir: Path) -> Any:
    """A TensorBoard SummaryWriter in output_dir/tensorboard, or None without `tensorboard`."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(log_dir=str(Path(output_dir) / "tensorboard"))


__all__ = ["CURVE_FILE", "METRICS_FILE", "MetricsLog", "read_metrics"]

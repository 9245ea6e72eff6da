"""An experiment's report: one table row per cell (thesis-style), report.json and a PNG plot."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clmr_embed.atomic import atomic_path, write_text
from training.experiment.cells import CellScores
from training.experiment.spec import Cell, Spec
from training.linear.probe import PROTOCOL
from training.linear.report import HEADLINE

TINY_NOTE = " (every cell shrunk: a pipeline check, not numbers to compare)"
NONE = "–"  # a column that does not apply to the cell (no pre-training)


@dataclass(frozen=True)
class CellRow:
    """A cell and its scores: one row of the report."""

    cell: Cell  # what ran
    scores: CellScores  # what it scored

    def value(self, column: str) -> float | None:
        """The numeric value of a NUMERIC_COLUMNS column (None where it does not apply)."""
        pretrain = self.cell.pretrain if self.cell.data else None
        if column == "label fraction":
            return self.cell.linear.label_fraction
        if column == "batch size":
            return float(pretrain.batch_size) if pretrain else None
        return float(self.scores.pretrain_steps) if pretrain else None  # "steps"

    def text(self, column: str) -> str:
        """The column's cell as shown in report.md."""
        cell = self.cell
        if column in ("label fraction", "batch size", "steps"):
            number = self.value(column)
            return NONE if number is None else f"{number:g}"
        augmentations = NONE
        if cell.data:
            names = cell.augmentations
            augmentations = "config's chain" if names is None else ", ".join(names) or "none"
            if cell.pretrain and cell.pretrain.augment.views == 1:
                augmentations += " (one view)"
        return {
            "model": cell.name,
            "kind": cell.kind,
            "pretrain data": cell.data_name or NONE,
            "probe": cell.probe_name,
            "augmentations": augmentations,
        }[column]


def metric_names(rows: Sequence[CellRow]) -> list[str]:
    """The headline metrics some cell has, in training.linear.report's order."""
    return [m for m in HEADLINE if any(m in r.scores.summary for r in rows)]


def _fmt(mean: float, std: float) -> str:
    if not math.isfinite(mean):
        return "n/a"
    return f"{mean:.4f}" if not std else f"{mean:.4f} ± {std:.4f}"


def markdown(spec: Spec, rows: Sequence[CellRow]) -> str:
    """report.md: the spec's title and notes, then one table row per cell."""
    names = metric_names(rows)
    lines = [f"# {spec.title}", ""]
    lines += [spec.description, ""] if spec.description else []
    lines += [
        f"- **spec**: {spec.path}",
        f"- **scale**: {spec.scale}" + (TINY_NOTE if spec.scale == "tiny" else ""),
        f"- **probe protocol**: {PROTOCOL}",
        "- **scores**: mean ± std over the probe's folds (one number: a single given split)",
        "",
    ]
    header = [*spec.columns, *names]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        shown = [row.text(c) for c in spec.columns]
        shown += [_fmt(*row.scores.summary.get(m, (math.nan, 0.0))) for m in names]
        lines.append("| " + " | ".join(shown) + " |")
    lines += ["", "Cell folders: `cells/<key>/` (probe report, done.json)."]
    lines += [f"- {row.cell.name}: `{row.cell.key()}`" for row in rows]
    return "\n".join(lines) + "\n"


def payload(spec: Spec, rows: Sequence[CellRow]) -> dict[str, Any]:
    """report.json: the spec's header and, per cell, its columns, resolved config and scores."""
    return {
        "title": spec.title,
        "spec": str(spec.path),
        "scale": spec.scale,
        "columns": list(spec.columns),
        "cells": [
            {
                "name": r.cell.name,
                "key": r.cell.key(),
                "columns": {c: r.text(c) for c in spec.columns},
                "cell": r.cell.resolved(),
                **r.scores.to_dict(),
            }
            for r in rows
        ],
    }


def plot(spec: Spec, rows: Sequence[CellRow], path: Path) -> None:
    """scores.png: each metric against plot_x (lines), else grouped bars per cell."""
    from matplotlib.figure import Figure  # local: matplotlib only when writing reports

    names = metric_names(rows)
    fig = Figure(figsize=(max(6.0, 0.9 * len(rows) + 2), 4))
    ax = fig.subplots()
    if spec.plot_x:
        for kind in dict.fromkeys(r.cell.kind for r in rows):  # one line per kind and metric
            points = [(v, r) for r in rows if r.cell.kind == kind and (v := r.value(spec.plot_x))]
            points.sort(key=lambda p: p[0])
            for name in names[:2]:  # the tag-wise pair: more lines would hide the trend
                y = [r.scores.summary.get(name, (math.nan, 0))[0] for _, r in points]
                ax.plot([v for v, _ in points], y, "o-", label=f"{kind}: {name}")
        ax.set_xscale("log")  # fractions, batch sizes and steps all span decades
        ax.set_xlabel(spec.plot_x)
    else:
        width = 0.8 / max(1, len(names))
        for k, name in enumerate(names):
            means = [r.scores.summary.get(name, (math.nan, 0))[0] for r in rows]
            ax.bar([i + k * width for i in range(len(rows))], means, width, label=name)
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(rows))], [r.cell.name for r in rows])
    ax.set_ylabel("score")
    ax.set_title(spec.title)
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")


def write_experiment_report(run_dir: Path, spec: Spec, rows: Sequence[CellRow]) -> list[Path]:
    """Write RUN/report.md, RUN/report.json and RUN/scores.png; returns their paths."""
    paths = [run_dir / "report.md", run_dir / "report.json", run_dir / "scores.png"]
    write_text(paths[0], markdown(spec, rows))
    write_text(paths[1], json.dumps(payload(spec, rows), indent=2, allow_nan=False) + "\n")
    plot(spec, rows, paths[2])
    return paths

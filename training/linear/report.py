"""Linear-evaluation reports: report.md, report.json and PNG plots in a run folder."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from clmr_embed.atomic import atomic_path, write_text
from training.linear.probe import PROTOCOL, EvalResult

HEADLINE = (
    "tag_roc_auc",
    "tag_pr_auc",
    "clip_roc_auc",
    "clip_pr_auc",
    "accuracy",
    "balanced_accuracy",
)


def per_label_means(result: EvalResult) -> dict[str, dict[str, float]]:
    """Per-label ROC-AUC / PR-AUC averaged over folds (NaN-skipping) and total test positives."""
    out = {}
    for label in result.labels:
        rows = [f.per_label[label] for f in result.folds]
        roc = np.array([r["roc_auc"] for r in rows])
        pr = np.array([r["pr_auc"] for r in rows])
        out[label] = {
            "roc_auc": float(np.nanmean(roc)) if np.isfinite(roc).any() else math.nan,
            "pr_auc": float(np.nanmean(pr)) if np.isfinite(pr).any() else math.nan,
            "positives": float(sum(r["positives"] for r in rows)),
        }
    return out


def _json_safe(value: Any) -> Any:
    """NaN/inf become null (strict JSON); tuples become lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _fmt(mean: float, std: float | None = None) -> str:
    if not math.isfinite(mean):
        return "n/a"
    return f"{mean:.4f}" if std is None else f"{mean:.4f} ± {std:.4f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _metric_names(results: Sequence[EvalResult]) -> list[str]:
    return [m for m in HEADLINE if any(m in r.summary for r in results)]


def _effective(result: EvalResult) -> float:
    return float(np.mean([f.effective_fraction for f in result.folds]))


def _markdown(results: Sequence[EvalResult], title: str, notes: dict[str, str]) -> str:
    names = _metric_names(results)
    first = results[0]
    lines = [f"# {title}", "", *(f"- **{k}**: {v}" for k, v in notes.items())]
    lines += [
        f"- **task**: {first.task}, {len(first.labels)} labels",
        f"- **protocol**: {first.protocol or PROTOCOL}",
        "",
        "## Summary (mean ± std over folds)",
        "",
    ]
    rows = [
        [f"{r.config.label_fraction:g}", f"{_effective(r):.4f}", str(len(r.folds))]
        + [_fmt(*r.summary[m]) if m in r.summary else "" for m in names]
        for r in results
    ]
    lines += _table(["label fraction", "effective", "folds", *names], rows)
    for r in results:
        lines += _folds_section(r, names)
    lines += _per_label_section(max(results, key=lambda r: r.config.label_fraction))
    return "\n".join(lines) + "\n"


def _folds_section(result: EvalResult, names: list[str]) -> list[str]:
    lines = ["", f"## Folds (label fraction {result.config.label_fraction:g})", ""]
    rows = [
        [f.name, *(str(f.sizes[k]) for k in ("train", "valid", "test")), str(f.epochs)]
        + [_fmt(f.metrics.get(m, math.nan)) for m in names]
        for f in result.folds
    ]
    lines += _table(["fold", "train", "valid", "test", "epochs", *names], rows)
    skipped = int(max(f.metrics.get("labels_skipped", 0) for f in result.folds))
    if skipped:
        lines += [
            "",
            f"Up to {skipped} label(s) per fold had one class only in the test "
            "set and were left out of the tag-wise means.",
        ]
    return lines


def _per_label_section(result: EvalResult) -> list[str]:
    lines = ["", f"## Per label (label fraction {result.config.label_fraction:g})", ""]
    rows = [
        [name, f"{v['positives']:g}", _fmt(v["roc_auc"]), _fmt(v["pr_auc"])]
        for name, v in per_label_means(result).items()
    ]
    return lines + _table(["label", "test positives", "ROC-AUC", "PR-AUC"], rows)


def _plot_per_label(result: EvalResult, path: Path) -> None:
    from matplotlib.figure import Figure  # local: matplotlib only when writing reports

    table = per_label_means(result)
    names = list(table)
    y = np.arange(len(names))
    fig = Figure(figsize=(7, 1.5 + 0.28 * len(names)))
    ax = fig.subplots()
    ax.barh(y - 0.2, [table[n]["roc_auc"] for n in names], height=0.4, label="ROC-AUC")
    ax.barh(y + 0.2, [table[n]["pr_auc"] for n in names], height=0.4, label="PR-AUC")
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("score (mean over folds)")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")


def _plot_fractions(results: Sequence[EvalResult], path: Path) -> None:
    from matplotlib.figure import Figure

    ordered = sorted(results, key=_effective)
    x = [_effective(r) for r in ordered]
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for name in _metric_names(results):
        if name.startswith("clip_"):
            continue
        mean = [r.summary.get(name, (math.nan, 0.0))[0] for r in ordered]
        std = [r.summary.get(name, (math.nan, 0.0))[1] for r in ordered]
        ax.errorbar(x, mean, yerr=std, marker="o", capsize=3, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("fraction of training labels used")
    ax.set_ylabel("score")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")


def write_report(
    run_dir: Path,
    results: Sequence[EvalResult],
    title: str = "Linear evaluation",
    notes: dict[str, str] | None = None,
) -> list[Path]:
    """Write report.md, report.json, per_label.png and (with several fractions) fractions.png.

    Args:
        run_dir: output folder (created).
        results: one EvalResult per label fraction, same data and labels.
        title: heading of report.md.
        notes: free "key: value" lines for the header (encoder, store, data, command).

    Returns:
        The written paths.
    """
    if not results:
        raise ValueError("write_report needs at least one EvalResult")
    run_dir = Path(run_dir)
    notes = notes or {}
    runs = [r.to_dict() | {"per_label": per_label_means(r)} for r in results]
    payload = {"title": title, "notes": notes, "runs": runs}
    paths = [run_dir / "report.json", run_dir / "report.md", run_dir / "per_label.png"]
    write_text(paths[0], json.dumps(_json_safe(payload), indent=2, allow_nan=False) + "\n")
    write_text(paths[1], _markdown(results, title, notes))
    _plot_per_label(max(results, key=lambda r: r.config.label_fraction), paths[2])
    if len({r.config.label_fraction for r in results}) > 1:
        paths.append(run_dir / "fractions.png")
        _plot_fractions(results, paths[-1])
    return paths

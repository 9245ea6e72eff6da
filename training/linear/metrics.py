"""Tagging and classification scores: tag-wise and clip-wise ROC-AUC / PR-AUC, accuracy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Scores:
    """Scores of one test set."""

    metrics: dict[str, float]  # scalar name -> value (see `score` for the names)
    per_label: dict[str, dict[str, float]]  # label -> roc_auc, pr_auc (NaN if skipped), positives
    skipped: tuple[str, ...]  # labels left out of tag-wise means: one class only in the test set


def _average_ranks(values: Array) -> Array:
    """1-based ranks, ties sharing their mean rank (as scipy.stats.rankdata)."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_values)) + 1]
    ends = np.r_[starts[1:], len(values)]
    ranks = np.empty(len(values))
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


def roc_auc(y_true: npt.ArrayLike, y_score: npt.ArrayLike) -> float:
    """Binary ROC-AUC (Mann-Whitney U, ties counted half); NaN when y_true has one class."""
    y = np.asarray(y_true, dtype=bool)
    s = np.asarray(y_score, dtype=np.float64)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    rank_sum = _average_ranks(s)[y].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def average_precision(y_true: npt.ArrayLike, y_score: npt.ArrayLike) -> float:
    """PR-AUC as scikit-learn's average_precision_score: sum over thresholds of dRecall * P.

    NaN when y_true has no positive.
    """
    y = np.asarray(y_true, dtype=bool)
    s = np.asarray(y_score, dtype=np.float64)
    if not y.any():
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last index of each tied score
    tps = np.cumsum(y)[last]
    precision = tps / (last + 1.0)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def tagwise(y_true: npt.ArrayLike, y_score: npt.ArrayLike) -> tuple[Array, Array]:
    """Per-label ROC-AUC and PR-AUC over items, float64 [n_labels] each (NaN: one class only)."""
    y = np.asarray(y_true, dtype=bool)
    s = np.asarray(y_score, dtype=np.float64)
    roc = np.array([roc_auc(y[:, j], s[:, j]) for j in range(y.shape[1])])
    pr = np.array([average_precision(y[:, j], s[:, j]) for j in range(y.shape[1])])
    single = y.all(axis=0) | ~y.any(axis=0)
    roc[single] = np.nan
    pr[single] = np.nan  # AP of an all-positive label is trivially 1; skip it as ROC does
    return roc, pr


def clipwise(y_true: npt.ArrayLike, y_score: npt.ArrayLike) -> tuple[float, float, int]:
    """Mean per-item ROC-AUC and PR-AUC over labels (CLMR v1's item-wise scores).

    Returns:
        (roc_auc, pr_auc, items skipped because all or none of their labels are positive).
    """
    y = np.asarray(y_true, dtype=bool)
    s = np.asarray(y_score, dtype=np.float64)
    usable = y.any(axis=1) & ~y.all(axis=1)
    if not usable.any():
        return float("nan"), float("nan"), len(y)
    roc = [roc_auc(y[i], s[i]) for i in np.flatnonzero(usable)]
    pr = [average_precision(y[i], s[i]) for i in np.flatnonzero(usable)]
    return float(np.mean(roc)), float(np.mean(pr)), int((~usable).sum())


def accuracy(true_class: npt.ArrayLike, pred_class: npt.ArrayLike) -> float:
    """Share of items whose predicted class is the true class."""
    return float(np.mean(np.asarray(true_class) == np.asarray(pred_class)))


def balanced_accuracy(true_class: npt.ArrayLike, pred_class: npt.ArrayLike) -> float:
    """Mean recall over the classes present in `true_class` (scikit-learn's definition)."""
    t = np.asarray(true_class)
    p = np.asarray(pred_class)
    return float(np.mean([np.mean(p[t == c] == c) for c in np.unique(t)]))


def score(
    targets: npt.ArrayLike, probs: npt.ArrayLike, labels: tuple[str, ...], task: str
) -> Scores:
    """All scores of clip-level predictions.

    Args:
        targets: float [n_items, n_labels] one-hot, multi-hot or soft (thresholded at 0.5).
        probs: float [n_items, n_labels] clip-level probabilities.
        labels: the label names, in column order.
        task: "multiclass" adds accuracy and balanced_accuracy (argmax vs the true class).

    Returns:
        Scores with metrics `tag_roc_auc`, `tag_pr_auc` (macro over labels with both classes in
        the test set), `clip_roc_auc`, `clip_pr_auc`, `labels_scored`, `labels_skipped`,
        `clips_skipped`, and for multiclass `accuracy`, `balanced_accuracy`.
    """
    t = np.asarray(targets, dtype=np.float64)
    y = t >= 0.5
    p = np.asarray(probs, dtype=np.float64)
    roc, pr = tagwise(y, p)
    kept = ~np.isnan(roc)
    clip_roc, clip_pr, clips_skipped = clipwise(y, p)
    metrics = {
        "tag_roc_auc": float(np.mean(roc[kept])) if kept.any() else float("nan"),
        "tag_pr_auc": float(np.mean(pr[kept])) if kept.any() else float("nan"),
        "clip_roc_auc": clip_roc,
        "clip_pr_auc": clip_pr,
        "labels_scored": float(kept.sum()),
        "labels_skipped": float((~kept).sum()),
        "clips_skipped": float(clips_skipped),
    }
    if task == "multiclass":
        true_class, pred_class = t.argmax(axis=1), p.argmax(axis=1)
        metrics["accuracy"] = accuracy(true_class, pred_class)
        metrics["balanced_accuracy"] = balanced_accuracy(true_class, pred_class)
    per_label = {
        name: {"roc_auc": float(roc[j]), "pr_auc": float(pr[j]), "positives": float(y[:, j].sum())}
        for j, name in enumerate(labels)
    }
    skipped = tuple(name for j, name in enumerate(labels) if not kept[j])
    return Scores(metrics, per_label, skipped)

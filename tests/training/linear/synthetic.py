"""Synthetic labelled features for probe and report tests: windows scattered around class means."""

from pathlib import Path

import numpy as np

from training.linear.dataset import LabelledSet
from training.linear.features import Features

DIM = 16


def synthetic(
    task: str, n_items: int = 60, n_labels: int = 3, seed: int = 0, spread: float = 4.0
) -> tuple[Features, LabelledSet]:
    """(features, data): windows scattered around per-class means (far apart for a large spread)."""
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(n_labels, DIM)) * spread
    if task == "multiclass":
        cls = np.arange(n_items) % n_labels
        targets = np.eye(n_labels, dtype=np.float32)[cls]
    else:
        targets = (rng.random((n_items, n_labels)) < 0.5).astype(np.float32)
        targets[np.arange(n_items), np.arange(n_items) % n_labels] = 1.0  # both classes per label
    windows = []
    for t in targets:
        n_windows = int(rng.integers(1, 5))
        centre = (t @ means) / max(t.sum(), 1.0)
        windows.append((centre + rng.normal(size=(n_windows, DIM))).astype(np.float32))
    data = LabelledSet(
        root=Path("/data"),
        paths=tuple(Path(f"/data/item{i}.wav") for i in range(n_items)),
        labels=tuple(f"l{j}" for j in range(n_labels)),
        targets=targets,
        task=task,
        groups=tuple(f"track{i // 2}" for i in range(n_items)),  # two clips per track
        splits=(None,) * n_items,
    )
    return Features(tuple(windows)), data

"""A labelled data set for linear evaluation: audio files with targets, groups and splits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from clmr_embed.errors import DataError

TASKS = ("multiclass", "multilabel", "soft")
SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class LabelledSet:
    """Audio files with targets, in one fixed item order."""

    root: Path  # folder the paths are relative to (the natural `clmr-embed extract` input)
    paths: tuple[Path, ...]  # absolute audio paths, one per item
    labels: tuple[str, ...]  # target names, in column order
    targets: npt.NDArray[np.float32]  # [n_items, n_labels]: one-hot, multi-hot or soft
    task: str  # "multiclass", "multilabel" or "soft"
    groups: tuple[str, ...]  # track/artist id per item; grouped splits keep each group whole
    splits: tuple[str | None, ...]  # given split ("train"/"valid"/"test") per item, or None

    def __post_init__(self) -> None:
        n = len(self.paths)
        if self.targets.shape != (n, len(self.labels)):
            raise DataError(
                f"targets shape {self.targets.shape} does not match {n} items x "
                f"{len(self.labels)} labels"
            )
        if len(self.groups) != n or len(self.splits) != n:
            raise DataError("groups and splits need one entry per item")
        if self.task not in TASKS:
            raise DataError(f"task {self.task!r} is not one of {list(TASKS)}")

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def relpaths(self) -> tuple[str, ...]:
        """POSIX paths relative to `root`, as `clmr-embed extract <root>` names them in a store."""
        outside = [p for p in self.paths if not p.is_relative_to(self.root)]
        if outside:
            raise DataError(f"{outside[0]} is outside the data root {self.root}; move it under it")
        return tuple(p.relative_to(self.root).as_posix() for p in self.paths)

    @property
    def has_given_split(self) -> bool:
        """True when every item has a given split and some item is in test."""
        return all(s is not None for s in self.splits) and "test" in self.splits

    def select(self, indices: npt.ArrayLike) -> LabelledSet:
        """The items at `indices`, in that order."""
        idx = np.asarray(indices, dtype=np.int64)
        return LabelledSet(
            root=self.root,
            paths=tuple(self.paths[i] for i in idx),
            labels=self.labels,
            targets=self.targets[idx],
            task=self.task,
            groups=tuple(self.groups[i] for i in idx),
            splits=tuple(self.splits[i] for i in idx),
        )


def keep_existing(data: LabelledSet) -> tuple[LabelledSet, int]:
    """Drop items whose audio file does not exist; returns the rest and how many were dropped."""
    keep = [i for i, p in enumerate(data.paths) if p.is_file()]
    return data.select(keep), len(data) - len(keep)

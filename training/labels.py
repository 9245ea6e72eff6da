"""Labelled data sets for linear evaluation: manifests, class folders, MagnaTagATune."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from clmr_embed.errors import DataError
from clmr_embed.scan import is_audio_file

TASKS = ("multiclass", "multilabel", "soft")
SPLITS = ("train", "valid", "test")
_SPLIT_ALIASES = {"training": "train", "val": "valid", "validation": "valid", "testing": "test"}
# Manifest columns that name something other than a label (soft manifests use the rest).
GROUP_COLUMNS = ("group", "track_id", "artist")
_RESERVED = {"path", "labels", "split", *GROUP_COLUMNS}
MANIFEST_NAMES = ("labels.csv", "labels.tsv", "manifest.csv", "manifest.tsv")


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


def read_labels(path: Path) -> LabelledSet:
    """Read labels from a manifest file or a folder.

    A folder is tried as MagnaTagATune (index_mtt.tsv / annotations_final.csv, also in meta/), then
    as holding a manifest (labels.csv, labels.tsv, manifest.csv, manifest.tsv), then as
    root/<class>/<files>.

    Raises:
        DataError: the path is missing or holds none of these layouts, or a file is malformed.
    """
    # Lazy: training.mtat builds LabelledSet, so it imports this module.
    from training.mtat import find_mtat_meta, read_mtat

    path = Path(path)
    if path.is_file():
        return read_manifest(path)
    if not path.is_dir():
        raise DataError(f"labels path {path} does not exist; pass a manifest CSV/TSV or a folder")
    if find_mtat_meta(path) is not None:
        return read_mtat(path)
    for name in MANIFEST_NAMES:
        if (path / name).is_file():
            return read_manifest(path / name)
    return read_class_folders(path)


def _split_value(raw: str, where: str) -> str | None:
    value = raw.strip().lower()
    if not value:
        return None
    value = _SPLIT_ALIASES.get(value, value)
    if value not in SPLITS:
        raise DataError(f"{where}: split {raw!r} is not one of {list(SPLITS)}; fix the value")
    return value


def _read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read manifest {path}: {exc}") from None
    delimiter = "\t" if path.suffix.lower() == ".tsv" or "\t" in text.split("\n", 1)[0] else ","
    reader = csv.DictReader(text.splitlines(), delimiter=delimiter)
    columns = [c.strip() for c in reader.fieldnames or []]
    if "path" not in columns:
        raise DataError(f"manifest {path} has no 'path' column (columns: {columns}); add one")
    rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]
    if not rows:
        raise DataError(f"manifest {path} has no rows")
    return columns, rows


def read_manifest(path: Path) -> LabelledSet:
    """Read a CSV/TSV manifest: `path` (relative to the manifest's folder) plus labels.

    Hard labels: a `labels` column, ';'-separated (one label on every row: multiclass, else
    multilabel). Soft targets: no `labels` column; every other column whose values are all
    numbers in [0, 1] is a label. Optional: `split` (train/valid/test), and `group`, `track_id` or
    `artist` (first present) for grouped splits; without one each file is its own group.
    """
    path = Path(path)
    columns, rows = _read_rows(path)
    root = path.parent.resolve()
    group_col = next((c for c in GROUP_COLUMNS if c in columns), None)
    paths, groups, splits, seen = [], [], [], {}
    for i, row in enumerate(rows):
        where = f"{path} row {i + 2}"
        if not row.get("path"):
            raise DataError(f"{where}: empty path; fill it in or delete the row")
        file = Path(os.path.normpath(root / row["path"]))  # not resolve(): keep symlinks as named
        if file in seen:
            raise DataError(f"{where}: path {row['path']!r} repeats row {seen[file]}; merge them")
        seen[file] = i + 2
        paths.append(file)
        groups.append(row[group_col] if group_col and row[group_col] else row["path"])
        splits.append(_split_value(row.get("split", ""), where))
    if "labels" in columns:
        labels, targets, task = _hard_targets(path, [row["labels"] for row in rows])
    else:
        labels, targets, task = _soft_targets(path, columns, rows)
    return LabelledSet(root, tuple(paths), labels, targets, task, tuple(groups), tuple(splits))


def _hard_targets(
    path: Path, cells: list[str]
) -> tuple[tuple[str, ...], npt.NDArray[np.float32], str]:
    per_row = [[x.strip() for x in cell.split(";") if x.strip()] for cell in cells]
    labels = tuple(sorted({x for row in per_row for x in row}))
    if not labels:
        raise DataError(f"manifest {path}: the labels column is empty on every row")
    column = {label: j for j, label in enumerate(labels)}
    targets = np.zeros((len(per_row), len(labels)), dtype=np.float32)
    for i, row in enumerate(per_row):
        targets[i, [column[x] for x in row]] = 1.0
    task = "multiclass" if all(len(row) == 1 for row in per_row) else "multilabel"
    return labels, targets, task


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _soft_targets(
    path: Path, columns: list[str], rows: list[dict[str, str]]
) -> tuple[tuple[str, ...], npt.NDArray[np.float32], str]:
    labels = []
    for col in columns:
        if col in _RESERVED:
            continue
        values = [_number(row[col]) for row in rows]
        # Numbers outside [0, 1] (durations, ids) are metadata, not targets.
        if all(v is not None and 0.0 <= v <= 1.0 for v in values):
            labels.append(col)
    if not labels:
        raise DataError(
            f"manifest {path} has no 'labels' column and no numeric label columns with values "
            "in [0, 1]; add a 'labels' column (';'-separated) or one score column per label"
        )
    targets = np.array([[float(row[c]) for c in labels] for row in rows], dtype=np.float32)
    binary = bool(np.isin(targets, (0.0, 1.0)).all())
    if binary and (targets.sum(axis=1) == 1).all():
        task = "multiclass"
    else:
        task = "multilabel" if binary else "soft"
    return tuple(labels), targets, task


def read_class_folders(root: Path) -> LabelledSet:
    """Read root/<class>/<audio files> (GTZAN style): multiclass, every file its own group."""
    root = Path(root).resolve()
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    items: list[tuple[Path, int]] = []
    for j, name in enumerate(classes):
        files = sorted(p for p in (root / name).rglob("*") if is_audio_file(p))
        items += [(p, j) for p in files]
    if not items:
        raise DataError(
            f"{root} holds no labels file and no audio in class folders; pass a manifest "
            f"({', '.join(MANIFEST_NAMES)}) or lay files out as {root}/<class>/<files>"
        )
    used = sorted({j for _, j in items})
    remap = {j: k for k, j in enumerate(used)}  # classes without audio are not labels
    targets = np.zeros((len(items), len(used)), dtype=np.float32)
    for i, (_, j) in enumerate(items):
        targets[i, remap[j]] = 1.0
    paths = tuple(p for p, _ in items)
    return LabelledSet(
        root=root,
        paths=paths,
        labels=tuple(classes[j] for j in used),
        targets=targets,
        task="multiclass",
        groups=tuple(p.relative_to(root).as_posix() for p in paths),
        splits=(None,) * len(paths),
    )

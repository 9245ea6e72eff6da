"""Labelled sets from a CSV/TSV manifest (hard or soft targets) or GTZAN-style class folders."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import numpy.typing as npt

from clmr_embed.errors import DataError
from clmr_embed.scan import is_audio_file
from training.linear.dataset import SPLITS, LabelledSet

_SPLIT_ALIASES = {"training": "train", "val": "valid", "validation": "valid", "testing": "test"}
# Manifest columns that name something other than a label (soft manifests use the rest).
GROUP_COLUMNS = ("group", "track_id", "artist")
_RESERVED = {"path", "labels", "split", *GROUP_COLUMNS}
MANIFEST_NAMES = ("labels.csv", "labels.tsv", "manifest.csv", "manifest.tsv")


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
    paths: list[Path] = []
    groups: list[str] = []
    splits: list[str | None] = []
    seen: dict[Path, int] = {}  # file -> the manifest row that named it
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

"""Labelled data sets for linear evaluation: manifests, class folders, MagnaTagATune."""

from __future__ import annotations

import ast
import csv
import json
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from clmr_embed.constants import MTAT_TAGS
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


# MagnaTagATune, as musicnn-training's aux/mtt/partition_gt.py splits it (clmr-reference.md §7.1).
MTAT_GT_FILES = {"train": "train_gt_mtt.tsv", "valid": "val_gt_mtt.tsv", "test": "test_gt_mtt.tsv"}
_MTAT_FILES = ("index_mtt.tsv", "annotations_final.csv", *MTAT_GT_FILES.values())
_MTAT_DROPPED = {"35644", "55753", "57881"}  # clip ids missing or corrupt in the MTAT release
_MTAT_FOLDERS = "0123456789abcdef"


def mtat_split(relpath: str) -> str:
    """The pons2017 split of an MTAT clip by its folder: 0-b train, c valid, d-f test."""
    folder = relpath.split("/", 1)[0]
    return "valid" if folder == "c" else "test" if folder in ("d", "e", "f") else "train"


def find_mtat_meta(folder: Path) -> Path | None:
    """The folder (`folder` or `folder/meta`) holding MTAT index/annotation files, or None."""
    for meta in (folder, folder / "meta"):
        if any((meta / name).is_file() for name in _MTAT_FILES):
            return meta
    return None


def _mtat_audio_root(folder: Path, meta: Path) -> Path:
    for candidate in (folder / "audio", folder / "mp3", folder, meta.parent / "audio"):
        if any((candidate / d).is_dir() for d in _MTAT_FOLDERS):
            return candidate.resolve()
    return folder.resolve()


def _mtat_tags(meta: Path) -> tuple[str, ...]:
    file = meta / "output_labels_mtt.txt"
    if not file.is_file():
        return MTAT_TAGS
    match = re.search(r"\[(.*)\]", file.read_text(), flags=re.S)
    if not match:
        raise DataError(f"{file} holds no [...] list of tags; restore it from musicnn-training")
    return tuple(ast.literal_eval("[" + match.group(1) + "]"))


def _read_tsv(file: Path) -> list[list[str]]:
    with open(file, newline="", encoding="utf-8") as handle:
        return [row for row in csv.reader(handle, delimiter="\t") if row]


def _mtat_gt(meta: Path, tags: tuple[str, ...]) -> dict[str, tuple[str, list[float]]]:
    """clip_id -> (split, target) from the Pons et al. *_gt_mtt.tsv files that exist."""
    items = {}
    for split, name in MTAT_GT_FILES.items():
        file = meta / name
        if not file.is_file():
            continue
        for line, row in enumerate(_read_tsv(file), start=1):
            try:
                target = [float(x) for x in json.loads(row[1])]
            except (IndexError, ValueError, TypeError):
                raise DataError(f"{file} line {line}: expected 'clip_id<TAB>[floats]'") from None
            if len(target) != len(tags):
                raise DataError(f"{file} line {line}: {len(target)} values for {len(tags)} tags")
            items[row[0]] = (split, target)
    return items


def _mtat_annotations(meta: Path, tags: tuple[str, ...], skip: set[str]) -> dict[str, tuple]:
    """clip_id -> (relpath, split, target) from annotations_final.csv for splits without gt."""
    file = meta / "annotations_final.csv"
    if not file.is_file():
        return {}
    rows = _read_tsv(file)
    header = rows[0]
    missing = [t for t in (*tags, "clip_id", "mp3_path") if t not in header]
    if missing:
        raise DataError(f"{file} lacks column(s) {missing[:5]}; use MTAT's annotations_final.csv")
    col = {name: j for j, name in enumerate(header)}
    items = {}
    for row in rows[1:]:
        split = mtat_split(row[col["mp3_path"]])
        if split in skip or row[col["clip_id"]] in _MTAT_DROPPED:
            continue
        target = [float(row[col[t]]) for t in tags]
        items[row[col["clip_id"]]] = (row[col["mp3_path"]], split, target)
    return items


def read_mtat(folder: Path) -> LabelledSet:
    """Read MagnaTagATune: index_mtt.tsv + {train,val,test}_gt_mtt.tsv, else annotations_final.csv.

    Splits without a gt file take their labels (top-50 tags, musicnn order) from
    annotations_final.csv; splits with neither are left out with a warning. Groups are tracks (the
    clip path without its `-start-end.mp3` suffix), so clips of one song never straddle folds.
    """
    folder = Path(folder)
    meta = find_mtat_meta(folder)
    if meta is None:
        raise DataError(f"{folder} holds none of {list(_MTAT_FILES)}")
    tags = _mtat_tags(meta)
    index_file = meta / "index_mtt.tsv"
    index = dict((r[0], r[1]) for r in _read_tsv(index_file)) if index_file.is_file() else {}
    gt = _mtat_gt(meta, tags)
    if gt and not index:
        raise DataError(f"{meta} has *_gt_mtt.tsv files but no index_mtt.tsv to map clip ids")
    given = {split for split, _ in gt.values()}
    items = {cid: (index[cid], split, target) for cid, (split, target) in gt.items()}
    items.update(_mtat_annotations(meta, tags, skip=given))
    absent = [s for s in SPLITS if s not in {split for _, split, _ in items.values()}]
    if absent:
        warnings.warn(
            f"{meta}: no labels for MTAT split(s) {absent} (no *_gt_mtt.tsv and no "
            "annotations_final.csv rows); they are left out",
            stacklevel=2,
        )
    root = _mtat_audio_root(folder, meta)
    order = sorted(items, key=int)
    relpaths = [items[c][0] for c in order]
    return LabelledSet(
        root=root,
        paths=tuple(root / r for r in relpaths),
        labels=tags,
        targets=np.array([items[c][2] for c in order], dtype=np.float32).reshape(-1, len(tags)),
        task="multilabel",
        groups=tuple(re.sub(r"-\d+-\d+\.mp3$", "", r.rsplit("/", 1)[-1]) for r in relpaths),
        splits=tuple(items[c][1] for c in order),
    )

"""MagnaTagATune labels: musicnn-training's ground-truth files or MTAT's annotations_final.csv."""

from __future__ import annotations

import ast
import csv
import json
import re
import warnings
from pathlib import Path

import numpy as np

from clmr_embed.constants import MTAT_TAGS
from clmr_embed.errors import DataError
from training.linear.dataset import SPLITS, LabelledSet

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


def _mtat_annotations(
    meta: Path, tags: tuple[str, ...], skip: set[str]
) -> dict[str, tuple[str, str, list[float]]]:
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

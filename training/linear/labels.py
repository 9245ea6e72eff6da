"""`read_labels`: any labelled set, by what the path holds (MTAT, a manifest, class folders)."""

from __future__ import annotations

from pathlib import Path

from clmr_embed.errors import DataError
from training.linear.dataset import LabelledSet
from training.linear.manifest import MANIFEST_NAMES, read_class_folders, read_manifest
from training.linear.mtat import find_mtat_meta, read_mtat


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

"""The store file itself (schema 2): a small manifest naming the segments, replaced atomically."""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import h5py

from clmr_embed import __version__
from clmr_embed.atomic import write_bytes
from clmr_embed.errors import StoreDamagedError, StoreError
from clmr_embed.roots import LibraryRoot
from clmr_embed.store.layout import (
    LEGACY_SCHEMA,
    READ_ERRORS,
    SCHEMA_VERSION,
    StoreHeader,
    file_image,
    get_json,
    header_attrs,
    header_from,
    memory_file,
    open_h5,
    put_json,
    timestamp,
)
from clmr_embed.store.segment import SegmentInfo, catalog_name, segment_folder

MANIFEST = "manifest"  # the checksummed JSON dataset; the root attrs mirror it for h5py users
LINKS = "segments"  # a group of external links, one per segment, for browsing with h5py


@dataclass(frozen=True)
class Manifest:
    """What a store is: its header, the segments to merge oldest first, and counters."""

    header: StoreHeader
    schema: int = SCHEMA_VERSION  # LEGACY_SCHEMA: the file holds everything, no segments
    generation: int = 0  # +1 per commit that changed content: "has the store changed?"
    serial: int = 0  # the number of the newest segment file written (names never repeat)
    segments: tuple[SegmentInfo, ...] = ()
    shards: tuple[dict[str, Any], ...] = ()  # provenance of stores merged into this one
    roots: tuple[LibraryRoot, ...] = ()  # where the relpaths' files were found, newest first
    created: str = field(default_factory=timestamp)
    updated: str = field(default_factory=timestamp)

    def to_json(self, folder: str) -> dict[str, Any]:
        return {
            "schema_version": self.schema,
            "header": self.header.to_dict(),
            "generation": self.generation,
            "serial": self.serial,
            "folder": folder,
            "segments": [asdict(info) for info in self.segments],
            "shards": list(self.shards),
            "roots": [root.to_dict() for root in self.roots],
            "created": self.created,
            "updated": self.updated,
        }


def merge_provenance(
    new: tuple[dict[str, Any], ...], old: tuple[dict[str, Any], ...]
) -> tuple[dict[str, Any], ...]:
    """Earlier shard records, then this merge's; a shard merged again (same path and creation
    time) keeps only its newest record, so a rerun lists every shard once."""
    renewed = {_shard_key(record) for record in new}
    return tuple(r for r in old if _shard_key(r) not in renewed) + new


def _shard_key(record: dict[str, Any]) -> tuple[Any, Any]:
    return record.get("path"), record.get("created")


def _from_json(value: dict[str, Any], path: Path) -> Manifest:
    folder = segment_folder(path)
    if value["folder"] != folder.name and value["segments"] and not folder.is_dir():
        raise StoreError(
            f"store {path} keeps its segments in {value['folder']}, and {folder.name} is "
            f"missing: it was renamed; rename the folder {value['folder']} to {folder.name} too"
        )
    return Manifest(
        header=header_from(value["header"], path),
        generation=int(value["generation"]),
        serial=int(value["serial"]),
        segments=tuple(SegmentInfo.from_dict(s) for s in value["segments"]),
        shards=tuple(dict(s) for s in value["shards"]),
        roots=tuple(LibraryRoot.from_dict(r) for r in value.get("roots", ())),  # added later
        created=str(value["created"]),
        updated=str(value["updated"]),
    )


def _not_ours(path: Path) -> StoreError:
    return StoreError(f"{path} is an HDF5 file but not a clmr-embed store; use another file")


def read_manifest(path: Path) -> Manifest:
    """The manifest of a store (schema 1: its header only).

    Raises:
        StoreError: missing, not HDF5, not a clmr-embed store, newer schema.
        StoreDamagedError: the manifest fails its checksum.
    """
    with open_h5(path) as f:
        try:
            return _read(f, path)
        except READ_ERRORS as exc:
            raise StoreDamagedError(
                f"the manifest of store {path} is damaged ({str(exc).splitlines()[0]}); "
                "start it over with the force option"
            ) from None


def _read(f: h5py.File, path: Path) -> Manifest:
    if "schema_version" not in f.attrs:
        raise _not_ours(path)
    schema = int(f.attrs["schema_version"])
    if schema > SCHEMA_VERSION:
        raise StoreError(
            f"store {path} has schema {schema}, newer than this clmr-embed's {SCHEMA_VERSION}; "
            "upgrade clmr-embed"
        )
    if schema == LEGACY_SCHEMA:
        if "tracks" not in f:
            raise _not_ours(path)
        created = str(f.attrs.get("created", ""))
        return Manifest(header_from(f.attrs, path), LEGACY_SCHEMA, created=created)
    if MANIFEST not in f:
        raise _not_ours(path)
    return _from_json(get_json(f, MANIFEST), path)


def write_manifest(path: Path, manifest: Manifest) -> int:
    """Replace the store file with this manifest (atomic rename, mode kept); bytes written."""
    folder = segment_folder(path).name
    manifest = replace(manifest, schema=SCHEMA_VERSION, updated=timestamp())
    f = memory_file()
    f.attrs.update(header_attrs(manifest.header))
    f.attrs.update(
        schema_version=SCHEMA_VERSION,
        generation=manifest.generation,
        clmr_embed_version=__version__,
        created=manifest.created,
        updated=manifest.updated,
    )
    put_json(f, MANIFEST, manifest.to_json(folder))
    links = f.create_group(LINKS)
    for info in manifest.segments:  # resolved beside the store file, whatever the cwd
        links[info.name] = h5py.ExternalLink(f"{folder}/{info.name}", "/")
    image = file_image(f)
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else None
    write_bytes(path, image)
    if mode is not None and mode != stat.S_IMODE(path.stat().st_mode):
        os.chmod(path, mode)  # a replaced store keeps the permissions its owner gave it
    return len(image)


def describe_file(path: Path) -> str:
    """ "" when `path` is missing or a clmr-embed store (any schema), else what it is instead."""
    if not path.exists():
        return ""
    try:
        f = h5py.File(path, "r")
    except (OSError, RuntimeError):
        return "not an HDF5 file"
    try:
        with f:
            ours = "schema_version" in f.attrs and ("tracks" in f or MANIFEST in f)
    except READ_ERRORS:
        return "an HDF5 file too damaged to tell whether it is a clmr-embed store"
    return "" if ours else "an HDF5 file that is not a clmr-embed store"


def copy_store(source: Path, target: Path) -> Path:
    """Copy a store to a new name: its manifest, and its segments into the target's own folder.

    A plain file copy of OUT.h5 leaves its segments behind (they live in OUT.h5.d/). Copy a
    store no writer is committing to: a merge may delete segments the copy is reading.

    Raises:
        StoreError: `source` is not a store, or `target` (or its folder) already exists.
    """
    manifest = read_manifest(source)
    folder = segment_folder(target)
    if target.exists() or folder.exists():
        raise StoreError(f"{target} or {folder.name} already exists; copy to a new name")
    if manifest.schema == LEGACY_SCHEMA:  # one self-contained file
        shutil.copyfile(source, target)
        return target
    folder.mkdir()
    for info in manifest.segments:
        for name in (info.name, catalog_name(info.name)):
            shutil.copyfile(segment_folder(source) / name, folder / name)
    write_manifest(target, manifest)
    return target

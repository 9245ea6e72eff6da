"""Distillation shards: Opus audio + int8 teacher targets, small enough to copy to a GPU machine.

A shard folder holds `audio/NNNNNN.opus` (24 kHz mono), `targets.npz` (each crop's standardised
target as int8, z x 31.75 clipped to +-127, with the per-dimension mean and std) and `shard.json`
(the grid, the teacher's sha256, each track's source path and length). `train pretrain` reads
shard folders as data: their audio becomes an ordinary audio cache (decoded once, like any
folder) and their targets fill that cache's target folder, so no teacher runs on the GPU machine.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile as sf
import soxr

from clmr_embed.atomic import atomic_path, write_text
from clmr_embed.digest import file_sha256
from clmr_embed.errors import DataError
from training.pretrain.cache import AudioCache, pcm_to_float
from training.pretrain.targets import META_FILE, GridSpec, TeacherTargets, target_folder

SHARD_FILE = "shard.json"
SHARD_FORMAT = 1
OPUS_RATE = 24000  # Opus codes 8/12/16/24/48 kHz; 24 kHz keeps everything below 12 kHz
OPUS_LEVEL = 0.93  # libsndfile compression level: ~24 kbps for music
Z_SCALE = 31.75  # int8 steps per standard deviation: +-4 sigma in +-127
TARGETS_FILE = "targets.npz"


@dataclass(frozen=True)
class ShardTrack:
    """One track of a shard."""

    name: str  # file under audio/
    source: str  # the cache's relpath of the track it was encoded from
    samples: int  # its length at the cache's rate (decoded Opus is within a few samples)
    crops: int  # its rows in targets.npz


def is_shard(path: Path) -> bool:
    """True for a folder written by write_shards."""
    return (Path(path) / SHARD_FILE).is_file()


def write_shards(
    targets: TeacherTargets, cache: AudioCache, out: Path, max_bytes: int
) -> list[Path]:
    """Pack every track of `cache` that has targets into shard folders of at most `max_bytes`.

    Tracks are packed whole and in cache order; a shard closes before the track that would take
    it past `max_bytes` (a single larger track gets a shard of its own, over the limit).

    Raises:
        DataError: `out` already holds shards.
    """
    out = Path(out)
    if out.exists() and any(out.glob(f"*/{SHARD_FILE}")):
        raise DataError(f"{out} already holds shards; pick an empty folder")
    shards: list[Path] = []
    pending: list[tuple[int, Path]] = []
    size = 0
    work = out / ".encoding"
    work.mkdir(parents=True, exist_ok=True)
    for track in np.flatnonzero(targets.available):
        opus = _encode(cache, int(track), work)
        crops = int(targets.offsets[track + 1] - targets.offsets[track])
        grows = opus.stat().st_size + crops * targets.dim
        if pending and size + grows > max_bytes:
            shards.append(_close(out / f"shard-{len(shards):03d}", pending, targets, cache))
            pending, size = [], 0
        pending.append((int(track), opus))
        size += grows
    if pending:
        shards.append(_close(out / f"shard-{len(shards):03d}", pending, targets, cache))
    shutil.rmtree(work)
    return shards


def _encode(cache: AudioCache, track: int, work: Path) -> Path:
    audio = soxr.resample(pcm_to_float(cache.track(track)), cache.sample_rate, OPUS_RATE, "HQ")
    path = work / f"{track:06d}.opus"
    sf.write(path, np.clip(audio, -1, 1), OPUS_RATE, format="OGG", subtype="OPUS",
             compression_level=OPUS_LEVEL)  # fmt: skip
    return path


def _close(
    folder: Path, pending: list[tuple[int, Path]], targets: TeacherTargets, cache: AudioCache
) -> Path:
    """Move the pending tracks into `folder` with their int8 targets and the shard.json."""
    (folder / "audio").mkdir(parents=True)
    tracks, rows = [], []
    for k, (track, opus) in enumerate(pending):
        name = f"{k:06d}.opus"
        opus.rename(folder / "audio" / name)
        lo, hi = targets.offsets[track], targets.offsets[track + 1]
        rows.append(np.asarray(targets.values[lo:hi], dtype=np.float32))
        tracks.append(
            ShardTrack(name, cache.relpaths[track], len(cache.track(track)), int(hi - lo))
        )
    z = (np.concatenate(rows) - targets.mean) / targets.std
    quantised = np.clip(np.rint(z * Z_SCALE), -127, 127).astype(np.int8)
    with atomic_path(folder / TARGETS_FILE) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, z=quantised, mean=targets.mean, std=targets.std)
    meta = {
        "format": SHARD_FORMAT,
        "sample_rate": cache.sample_rate,
        "spec": asdict(targets.spec),
        "teacher_sha256": targets.teacher_sha256,
        "tracks": [asdict(t) for t in tracks],
    }
    write_text(folder / SHARD_FILE, json.dumps(meta, indent=1))  # written last: marks it whole
    return folder


def read_meta(shard: Path) -> dict[str, object]:
    """A shard's shard.json, checked for its format."""
    meta: dict[str, object] = json.loads((Path(shard) / SHARD_FILE).read_text())
    if meta.get("format") != SHARD_FORMAT:
        raise DataError(f"{shard}: shard format {meta.get('format')}, this clmr-embed reads 1")
    return meta


def audio_folders(shards: list[Path]) -> list[Path]:
    """What the audio cache decodes: each shard's audio/ folder."""
    return [Path(s) / "audio" for s in shards]


def install_targets(cache: AudioCache, shards: list[Path]) -> GridSpec:
    """Fill the target folder of `cache` (decoded from `shards`) with the shards' targets.

    Each track's rows are written back in the teacher's units (z x std + mean), so TeacherTargets
    standardises them as if the teacher had run here. Idempotent.

    Raises:
        DataError: shards of different grids or teachers, or a cache track no shard names.
    """
    metas = [read_meta(s) for s in shards]
    specs = {json.dumps(m["spec"], sort_keys=True) for m in metas}
    teachers = {m["teacher_sha256"] for m in metas}
    if len(specs) != 1 or len(teachers) != 1:
        raise DataError(f"shards of different grids or teachers: {sorted(specs)}, {teachers}")
    spec = GridSpec(**json.loads(specs.pop()))
    folder = target_folder(cache, spec)
    (folder / "tracks").mkdir(parents=True, exist_ok=True)
    by_content = {sha: track for track, sha in enumerate(cache.sha256)}  # the cache hashes files
    for shard, meta in zip(shards, metas, strict=True):
        for entry, values in zip(_entries(meta), _shard_rows(Path(shard)), strict=True):
            opus = Path(shard) / "audio" / entry.name
            track = by_content.get(file_sha256(opus))
            if track is None:
                raise DataError(f"{opus} is not in the audio cache {cache.folder}")
            _write_rows(folder, track, values, int(spec.counts(cache.lengths[[track]])[0]))
    meta = {"spec": asdict(spec), "teacher_sha256": teachers.pop()}
    write_text(folder / META_FILE, json.dumps(meta))
    return spec


def _entries(meta: dict[str, object]) -> list[ShardTrack]:
    tracks = meta["tracks"]
    assert isinstance(tracks, list)
    return [ShardTrack(**t) for t in tracks]


def _shard_rows(shard: Path) -> Iterator[npt.NDArray[np.float32]]:
    """Each track's rows of a shard, in the teacher's units."""
    with np.load(shard / TARGETS_FILE) as data:
        z, mean, std = data["z"], data["mean"], data["std"]
    entries = _entries(read_meta(shard))
    bounds = np.cumsum([0] + [e.crops for e in entries])
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        yield z[lo:hi].astype(np.float32) / Z_SCALE * std + mean


def _write_rows(folder: Path, track: int, values: npt.NDArray[np.float32], count: int) -> None:
    # Opus decoding restores the length to within a few samples; a grid count one off is met by
    # repeating or dropping the last row (a crop 1 s from its neighbour).
    values = (
        values[:count]
        if len(values) >= count
        else np.concatenate([values, np.repeat(values[-1:], count - len(values), axis=0)])
    )
    part = folder / "tracks" / f"{track:06d}.npy"
    with atomic_path(part) as tmp, open(tmp, "wb") as handle:
        np.save(handle, values.astype(np.float16))

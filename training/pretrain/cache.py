"""Decode-once training audio cache: a corpus as 16-bit PCM at the model rate in one mapped file."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import secrets
import shutil
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from clmr_embed.atomic import fsync_path, write_text
from clmr_embed.audio import stream_audio
from clmr_embed.constants import WINDOW_SAMPLES
from clmr_embed.digest import file_sha256
from clmr_embed.errors import AudioDecodeError, ConfigError, DataError
from clmr_embed.registry import cache_dir
from clmr_embed.scan import find_audio_files

CACHE_VERSION = 1  # bump when the layout below changes; old caches are then rebuilt
SAMPLES_FILE = "samples.i16"  # raw little-endian int16, all tracks back to back
INDEX_FILE = "index.json"  # written last: its presence marks a complete cache
# Linear evaluation scores on these sets; pre-training on them would leak the test data.
PROBE_SETS = ("gtzan_subset", "medley_solos_subset")
MANIFEST_SUFFIXES = (".txt", ".csv", ".tsv", ".lst", ".m3u", ".m3u8")
_PCM_SCALE = 32767.0  # int16 full scale; samples are clipped to [-1, 1] first


@dataclass(frozen=True)
class SkippedFile:
    """A file left out of the cache, and why."""

    path: str  # the file as found
    reason: str  # "shorter than one window ..." or the decode error


@dataclass(frozen=True)
class CacheSummary:
    """What `build_cache` did."""

    folder: Path  # the cache folder (index.json + samples.i16)
    tracks: int  # tracks in the cache
    seconds: float  # audio in the cache, at the model rate
    skipped: tuple[SkippedFile, ...]  # short or undecodable files, not cached
    reused: bool  # True when an existing cache of the same files was opened


class AudioCache:
    """Read side of a cache: track i as an int16 view into the memory-mapped samples file.

    The map opens lazily per process, so DataLoader workers (fork or spawn) each map the file
    instead of pickling its contents.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        index = json.loads((self.folder / INDEX_FILE).read_text())
        self.sample_rate: int = index["sample_rate"]
        self.relpaths: list[str] = [t["relpath"] for t in index["tracks"]]
        self.sha256: list[str] = [t["sha256"] for t in index["tracks"]]
        self.offsets = np.array([t["offset"] for t in index["tracks"]], dtype=np.int64)
        self.lengths = np.array([t["length"] for t in index["tracks"]], dtype=np.int64)
        self.skipped = tuple(SkippedFile(**s) for s in index["skipped"])
        self._samples: np.memmap | None = None

    def __len__(self) -> int:
        return len(self.relpaths)

    def track(self, i: int) -> npt.NDArray[np.int16]:
        """Track `i` as int16 [length] (a view: no copy until sliced into a tensor)."""
        if self._samples is None:
            self._samples = np.memmap(self.folder / SAMPLES_FILE, dtype="<i2", mode="r")
        start = int(self.offsets[i])
        return self._samples[start : start + int(self.lengths[i])]

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_samples": None}


def default_cache_root() -> Path:
    """`<clmr-embed cache>/audio-cache`, e.g. `$XDG_CACHE_HOME/clmr-embed/audio-cache`."""
    return cache_dir() / "audio-cache"


def build_cache(
    inputs: list[Path],
    sample_rate: int,
    *,
    cache_root: Path | None = None,
    min_samples: int = WINDOW_SAMPLES,
    allow_probe_sets: bool = False,
    progress: bool = True,
) -> tuple[AudioCache, CacheSummary]:
    """Decode and resample every input file once into a cache, or reuse the cache of the same files.

    Args:
        inputs: folders (searched recursively), audio files, or manifests (.txt/.csv/... listing
            one path per line, first CSV column; relative paths are relative to the manifest).
        sample_rate: model rate in Hz.
        cache_root: folder holding caches; default `default_cache_root()`. Each corpus gets a
            sub-folder named by a hash of its file list (path, size, mtime) and the rate.
        min_samples: tracks shorter than this (one window) are skipped.
        allow_probe_sets: accept inputs under the linear-evaluation sets (PROBE_SETS).
        progress: show a tqdm bar on stderr while decoding.

    Returns:
        (cache, summary); skipped files are also reported by one warning.

    Raises:
        ConfigError: an input lies under a probe set and `allow_probe_sets` is False.
        DataError: no audio files found, or none usable.
    """
    paths = resolve_inputs(inputs)
    if not allow_probe_sets:
        _refuse_probe_sets([*map(Path, inputs), *paths])
    key = _cache_key(paths, sample_rate, min_samples)
    root = Path(cache_root) if cache_root else default_cache_root()
    folder = root / key
    reused = (folder / INDEX_FILE).exists()
    if not reused:
        _write_cache(paths, folder, sample_rate, min_samples, progress)
    cache = AudioCache(folder)
    summary = CacheSummary(
        folder=folder,
        tracks=len(cache),
        seconds=float(cache.lengths.sum()) / sample_rate,
        skipped=cache.skipped,
        reused=reused,
    )
    if summary.skipped:
        shown = "; ".join(f"{s.path}: {s.reason}" for s in summary.skipped[:3])
        more = f" (and {len(summary.skipped) - 3} more)" if len(summary.skipped) > 3 else ""
        warnings.warn(f"{len(summary.skipped)} file(s) not cached: {shown}{more}", stacklevel=2)
    if len(cache) == 0:
        raise DataError(f"no usable audio among {len(paths)} file(s); see the skipped-file warning")
    return cache, summary


def resolve_inputs(inputs: list[Path]) -> list[Path]:
    """Expand folders and manifests into a sorted, de-duplicated list of audio file paths."""
    expanded: list[Path] = []
    for item in map(Path, inputs):
        if item.is_file() and item.suffix.lower() in MANIFEST_SUFFIXES:
            expanded.extend(read_manifest(item))
        else:
            expanded.append(item)
    files = sorted({f.path.resolve() for f in find_audio_files(expanded)})
    if not files:
        raise DataError(
            f"no audio files found in {[str(p) for p in inputs]}; pass folders or files"
        )
    return files


def read_manifest(path: Path) -> list[Path]:
    """Paths listed in a text/CSV manifest: first column, '#' lines and a 'path' header skipped."""
    lines = path.read_text().splitlines()
    if path.suffix.lower() in (".txt", ".lst", ".m3u", ".m3u8"):
        cells = [line.strip() for line in lines]  # paths may contain commas
    else:
        delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
        cells = [row[0].strip() for row in csv.reader(lines, delimiter=delimiter) if row]
    entries = [c for c in cells if c and not c.startswith("#")]
    if entries and entries[0].lower() in ("path", "file", "filename", "filepath"):
        entries = entries[1:]
    return [(path.parent / e) if not Path(e).is_absolute() else Path(e) for e in entries]


def _refuse_probe_sets(paths: list[Path]) -> None:
    for path in paths:
        hit = next((name for name in PROBE_SETS if name in path.as_posix()), None)
        if hit:
            raise ConfigError(
                f"{path} is in the probe set {hit!r}, which linear evaluation scores; pre-training "
                "on it would leak test data. Remove it, or pass allow_probe_sets=True on purpose"
            )


def _cache_key(paths: list[Path], sample_rate: int, min_samples: int) -> str:
    digest = hashlib.sha256(f"v{CACHE_VERSION}:{sample_rate}:{min_samples}".encode())
    for path in paths:
        stat = path.stat()
        digest.update(f"\n{path.as_posix()}\t{stat.st_size}\t{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:24]


def _write_cache(
    paths: list[Path], folder: Path, sample_rate: int, min_samples: int, progress: bool
) -> None:
    """Build in a hidden sibling folder, then rename it into place (readers never see halves)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.{os.getpid()}.{secrets.token_hex(4)}"
    tmp.mkdir()  # mkdir, not mkdtemp: the umask's mode, so a shared cache is readable by others
    try:
        with open(tmp / SAMPLES_FILE, "wb") as out:
            tracks, skipped = _decode_tracks(paths, out, sample_rate, min_samples, progress)
        fsync_path(tmp / SAMPLES_FILE)
        index = {
            "version": CACHE_VERSION,
            "sample_rate": sample_rate,
            "tracks": tracks,
            "skipped": skipped,
        }
        write_text(tmp / INDEX_FILE, json.dumps(index))
        try:
            os.replace(tmp, folder)
        except OSError:  # another process (e.g. a DDP rank) finished the same cache first
            if not (folder / INDEX_FILE).exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


Row = dict[str, Any]  # one track's or skipped file's entry of index.json


def _decode_tracks(
    paths: list[Path], out: BinaryIO, sample_rate: int, min_samples: int, progress: bool
) -> tuple[list[Row], list[Row]]:
    """Append every usable file's PCM to `out`; returns the index rows of tracks and skips."""
    tracks, skipped = [], []
    common = Path(os.path.commonpath(paths)) if len(paths) > 1 else paths[0].parent
    bar = tqdm(paths, "caching audio", unit="file", file=sys.stderr, disable=not progress)
    for path in bar:
        start = out.tell() // 2
        try:
            length = _append_track(out, path, sample_rate)
        except AudioDecodeError as exc:
            length, reason = 0, str(exc)
        else:
            reason = f"shorter than one window ({length} < {min_samples} samples)"
        if length < min_samples:
            out.seek(start * 2)
            out.truncate()  # drop the partial track
            skipped.append({"path": str(path), "reason": reason})
            continue
        relpath = path.relative_to(common).as_posix()
        tracks.append(
            {"relpath": relpath, "offset": start, "length": length, "sha256": file_sha256(path)}
        )
    bar.close()
    return tracks, skipped


def _append_track(out: BinaryIO, path: Path, sample_rate: int) -> int:
    """Stream one file's decoded mono blocks into `out` as int16; returns its length in samples."""
    _, blocks = stream_audio(path, sample_rate)
    length = 0
    for block in blocks:
        pcm = np.rint(np.clip(block, -1.0, 1.0) * _PCM_SCALE).astype("<i2")
        out.write(pcm.tobytes())
        length += pcm.size
    return length


def pcm_to_float(pcm: npt.NDArray[np.int16]) -> npt.NDArray[np.float32]:
    """Cached int16 samples back to float32 in [-1, 1]."""
    return pcm.astype(np.float32) / _PCM_SCALE

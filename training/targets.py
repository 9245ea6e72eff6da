"""Teacher targets on a fixed grid of crop positions of an audio cache, computed once, resumable."""

from __future__ import annotations

import json
import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from clmr_embed.atomic import atomic_path, write_text
from clmr_embed.audio import resample
from clmr_embed.digest import file_sha256
from clmr_embed.errors import ConfigError, DataError
from training.cache import AudioCache, pcm_to_float
from training.teacher import OUTPUTS, TEACHER_RATE, Teacher, centred_patches

VALUES_FILE = "values.f16.npy"  # [n_crops, dim] float16 raw teacher outputs, track by track
META_FILE = "targets.json"  # written last: its presence marks a complete target cache
STD_FLOOR = 1e-4  # dimensions that never vary (dead units) standardise to 0, not to inf


@dataclass(frozen=True)
class GridSpec:
    """Which crops get a target: every `hop` samples where a whole window fits in the track."""

    output: str  # teacher output ("max_pool", "penultimate", "taggram", ...)
    hop: int  # grid step in samples at the cache's rate (1 s = 22050)
    window: int  # crop length in samples (59049)

    def counts(self, lengths: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Grid positions per track: starts 0, hop, 2 hop, ... with start + window <= length."""
        return np.maximum((lengths - self.window) // self.hop + 1, 0)


def _spec_folder(cache: AudioCache, spec: GridSpec) -> Path:
    return cache.folder / f"teacher-{spec.output}-hop{spec.hop}-w{spec.window}"


class TeacherTargets:
    """Read side: standardised float32 targets for (track, crop start) on the grid."""

    def __init__(self, folder: Path) -> None:
        meta = json.loads((Path(folder) / META_FILE).read_text())
        self.folder = Path(folder)
        self.spec = GridSpec(**meta["spec"])
        self.teacher_sha256: str = meta["teacher_sha256"]
        self.offsets = np.asarray(meta["offsets"], dtype=np.int64)  # [n_tracks + 1]
        self.mean = np.asarray(meta["mean"], dtype=np.float32)
        self.std = np.asarray(meta["std"], dtype=np.float32)
        self.values = np.load(self.folder / VALUES_FILE, mmap_mode="r")

    @property
    def dim(self) -> int:
        """Target width (753 for max_pool)."""
        return int(self.values.shape[1])

    def lookup(
        self, tracks: npt.NDArray[np.int64], starts: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.float32]:
        """[n, dim] standardised targets of crops starting at `starts` (samples) of `tracks`.

        Raises:
            DataError: a start is off the grid or past the track's last grid position.
        """
        grid, rest = np.divmod(np.asarray(starts, dtype=np.int64), self.spec.hop)
        rows = self.offsets[tracks] + grid
        if rest.any() or (rows >= self.offsets[np.asarray(tracks) + 1]).any():
            raise DataError(f"crop starts {starts.tolist()} are not on the teacher grid")
        raw = np.asarray(self.values[rows], dtype=np.float32)
        return (raw - self.mean) / self.std


def track_targets(
    teacher: Teacher, pcm: npt.NDArray[np.int16], rate: int, spec: GridSpec
) -> npt.NDArray[np.float32]:
    """Raw teacher outputs [n_grid, dim] for one cached track: a 3-s patch centred on each crop."""
    n = int(spec.counts(np.array([len(pcm)]))[0])
    audio = resample(pcm_to_float(pcm), rate, TEACHER_RATE)
    centres = (np.arange(n) * spec.hop + spec.window / 2) / rate
    return teacher.run(centred_patches(teacher.logmel(audio), centres), spec.output)


def build_targets(cache: AudioCache, job: TargetJob, progress: bool = True) -> TeacherTargets:
    """Compute (or finish, or reuse) the targets of every grid crop of `cache`.

    Kept beside the cache (a folder per output/grid). Each track's rows go to their own file
    first (atomic), so a killed build resumes where it stopped and worker processes need no
    coordination; the last step concatenates them and computes the per-dimension statistics.
    """
    spec = job.spec
    if spec.output not in OUTPUTS:
        raise ConfigError(f"teacher output {spec.output!r} is not one of {list(OUTPUTS)}")
    folder = _spec_folder(cache, spec)
    if (folder / META_FILE).exists():
        return TeacherTargets(folder)
    counts = spec.counts(cache.lengths)
    if counts.sum() == 0:
        raise DataError(f"{cache.folder}: no track holds a whole {spec.window}-sample window")
    parts = folder / "tracks"
    parts.mkdir(parents=True, exist_ok=True)
    todo = [i for i in range(len(cache)) if not (parts / f"{i:06d}.npy").exists()]
    bar = tqdm(total=len(cache), initial=len(cache) - len(todo), desc="teacher targets")
    bar.disable = not progress
    context = mp.get_context("spawn")  # onnxruntime sessions do not survive fork
    with ProcessPoolExecutor(
        job.workers, context, initializer=_init_worker, initargs=(job, cache.folder)
    ) as pool:
        for _ in pool.map(_track_job, todo):
            bar.update()
    bar.close()
    return _finish(folder, cache, spec, file_sha256(Path(job.weights) / "musicnn_mtt.onnx"))


@dataclass(frozen=True)
class TargetJob:
    """How to compute a target cache."""

    spec: GridSpec  # which crops and which teacher output
    weights: Path  # folder with musicnn_mtt.onnx, musicnn_frontend.py, the reference npz
    workers: int = 1  # teacher processes, one onnxruntime thread each


_WORKER: dict[str, object] = {}  # per worker process: its Teacher, cache and spec


def _init_worker(job: TargetJob, cache_folder: Path) -> None:
    _WORKER.update(
        teacher=Teacher(job.weights, threads=1), cache=AudioCache(cache_folder), spec=job.spec
    )


def _track_job(track: int) -> int:
    teacher, cache, spec = _WORKER["teacher"], _WORKER["cache"], _WORKER["spec"]
    assert isinstance(teacher, Teacher) and isinstance(cache, AudioCache)
    assert isinstance(spec, GridSpec)
    rows = track_targets(teacher, cache.track(track), cache.sample_rate, spec)
    part = _spec_folder(cache, spec) / "tracks" / f"{track:06d}.npy"
    with atomic_path(part) as tmp, open(tmp, "wb") as handle:
        np.save(handle, rows.astype(np.float16))
    return track


def _finish(folder: Path, cache: AudioCache, spec: GridSpec, teacher_sha: str) -> TeacherTargets:
    counts = spec.counts(cache.lengths)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    shape = (int(offsets[-1]), OUTPUTS[spec.output])
    with atomic_path(folder / VALUES_FILE) as tmp:
        values = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16, shape=shape)
        for track in range(len(cache)):
            rows = np.load(folder / "tracks" / f"{track:06d}.npy")
            if len(rows) != counts[track]:
                raise DataError(
                    f"{folder}: track {track} has {len(rows)} targets, not {counts[track]}"
                )
            values[offsets[track] : offsets[track + 1]] = rows
        values.flush()
        mean, std = _stats(values)
        del values
    meta = {
        "spec": asdict(spec),
        "teacher_sha256": teacher_sha,
        "offsets": offsets.tolist(),
        "mean": mean.tolist(),
        "std": std.tolist(),
    }
    write_text(folder / META_FILE, json.dumps(meta))
    return TeacherTargets(folder)


def _stats(values: np.memmap) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    total = np.zeros(values.shape[1])
    square = np.zeros(values.shape[1])
    for lo in range(0, len(values), 65536):  # float64 sums in chunks: bounded memory
        chunk = np.asarray(values[lo : lo + 65536], dtype=np.float64)
        total += chunk.sum(0)
        square += (chunk**2).sum(0)
    mean = total / len(values)
    std = np.sqrt(np.maximum(square / len(values) - mean**2, 0.0))
    return mean.astype(np.float32), np.maximum(std, STD_FLOOR).astype(np.float32)

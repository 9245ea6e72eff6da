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
from training.pretrain.cache import AudioCache, pcm_to_float
from training.pretrain.teacher import OUTPUTS, TEACHER_RATE, Teacher, centred_patches

META_FILE = "targets.json"  # the grid, the teacher's sha256 and the build order
STD_FLOOR = 1e-4  # dimensions that never vary (dead units) standardise to 0, not to inf
ORDER_SEED = 0  # tracks are computed in a seeded order, so a partial build spans the corpus


@dataclass(frozen=True)
class GridSpec:
    """Which crops get a target: every `hop` samples where a whole window fits in the track."""

    output: str  # teacher output ("max_pool", "penultimate", "taggram", ...)
    hop: int  # grid step in samples at the cache's rate (1 s = 22050)
    window: int  # crop length in samples (59049)

    def counts(self, lengths: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Grid positions per track: starts 0, hop, 2 hop, ... with start + window <= length."""
        return np.maximum((lengths - self.window) // self.hop + 1, 0)


@dataclass(frozen=True)
class TargetJob:
    """How to compute a target cache."""

    spec: GridSpec  # which crops and which teacher output
    weights: Path  # folder with musicnn_mtt.onnx, musicnn_frontend.py, the reference npz
    workers: int = 1  # teacher processes, one onnxruntime thread each
    limit: int = 0  # stop after this many tracks in total (0: all), e.g. to start training early


def target_folder(cache: AudioCache, spec: GridSpec) -> Path:
    """Where the targets of `spec` over `cache` live: a folder beside the cache's samples."""
    return cache.folder / f"teacher-{spec.output}-hop{spec.hop}-w{spec.window}"


def _part(folder: Path, track: int) -> Path:
    return folder / "tracks" / f"{track:06d}.npy"


class TeacherTargets:
    """Read side: standardised float32 targets for (track, crop start), for the tracks done.

    A build may be partial (see TargetJob.limit): `available[track]` says which tracks have
    targets; the statistics are over the crops of those tracks.
    """

    def __init__(self, cache: AudioCache, spec: GridSpec) -> None:
        self.folder = target_folder(cache, spec)
        meta = json.loads((self.folder / META_FILE).read_text())
        if GridSpec(**meta["spec"]) != spec:
            raise DataError(f"{self.folder}: built for {meta['spec']}, not {asdict(spec)}")
        self.spec = spec
        self.teacher_sha256: str = meta["teacher_sha256"]
        counts = spec.counts(cache.lengths)
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.available = np.array([_part(self.folder, t).exists() for t in range(len(cache))])
        if not self.available.any():
            raise DataError(f"{self.folder} holds no targets yet; build them first")
        self.values = np.zeros((int(self.offsets[-1]), OUTPUTS[spec.output]), np.float16)
        for track in np.flatnonzero(self.available):
            rows = np.load(_part(self.folder, int(track)))
            if len(rows) != counts[track]:
                raise DataError(f"{_part(self.folder, int(track))} is damaged; delete it")
            self.values[self.offsets[track] : self.offsets[track + 1]] = rows
        self.mean, self.std = _stats(self.values[self._rows_available()])

    @property
    def dim(self) -> int:
        """Target width (753 for max_pool)."""
        return int(self.values.shape[1])

    @property
    def coverage(self) -> float:
        """Share of the grid's crops that have a target."""
        return float(len(self._rows_available()) / max(len(self.values), 1))

    def _rows_available(self) -> npt.NDArray[np.int64]:
        spans = [
            np.arange(self.offsets[t], self.offsets[t + 1]) for t in np.flatnonzero(self.available)
        ]
        return np.concatenate(spans).astype(np.int64)

    def lookup(
        self, tracks: npt.NDArray[np.int64], starts: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
        """Standardised targets [n, dim] of crops at `starts` (samples) of `tracks`, and a mask.

        Rows of tracks without targets are zero with mask False.

        Raises:
            DataError: a start is off the grid or past the track's last grid position.
        """
        tracks = np.asarray(tracks, dtype=np.int64)
        grid, rest = np.divmod(np.asarray(starts, dtype=np.int64), self.spec.hop)
        rows = self.offsets[tracks] + grid
        if rest.any() or (rows >= self.offsets[tracks + 1]).any():
            raise DataError(
                f"crop starts {np.asarray(starts).tolist()} are not on the teacher grid"
            )
        mask = self.available[tracks]
        out = (np.asarray(self.values[rows], dtype=np.float32) - self.mean) / self.std
        out[~mask] = 0.0
        return out.astype(np.float32), mask


def track_targets(
    teacher: Teacher, pcm: npt.NDArray[np.int16], rate: int, spec: GridSpec
) -> npt.NDArray[np.float32]:
    """Raw teacher outputs [n_grid, dim] for one cached track: a 3-s patch centred on each crop."""
    n = int(spec.counts(np.array([len(pcm)]))[0])
    audio = resample(pcm_to_float(pcm), rate, TEACHER_RATE)
    centres = (np.arange(n) * spec.hop + spec.window / 2) / rate
    return teacher.run(centred_patches(teacher.logmel(audio), centres), spec.output)


def build_targets(cache: AudioCache, job: TargetJob, progress: bool = True) -> TeacherTargets:
    """Compute the targets of every grid crop of `cache` not done yet (or the first job.limit).

    Kept beside the cache (a folder per output/grid). Each track's rows go to their own file
    (atomic), so a killed build resumes where it stopped and worker processes need no
    coordination. Tracks are taken in a seeded order, so a partial build spans the corpus.
    """
    spec = job.spec
    if spec.output not in OUTPUTS:
        raise ConfigError(f"teacher output {spec.output!r} is not one of {list(OUTPUTS)}")
    if spec.counts(cache.lengths).sum() == 0:
        raise DataError(f"{cache.folder}: no track holds a whole {spec.window}-sample window")
    folder = target_folder(cache, spec)
    (folder / "tracks").mkdir(parents=True, exist_ok=True)
    sha = file_sha256(Path(job.weights) / "musicnn_mtt.onnx")
    write_text(folder / META_FILE, json.dumps({"spec": asdict(spec), "teacher_sha256": sha}))
    order = np.random.default_rng(ORDER_SEED).permutation(len(cache))
    wanted = order[: job.limit] if job.limit else order
    todo = [int(t) for t in wanted if not _part(folder, int(t)).exists()]
    bar = tqdm(total=len(wanted), initial=len(wanted) - len(todo), desc="teacher targets")
    bar.disable = not progress
    context = mp.get_context("spawn")  # onnxruntime sessions do not survive fork
    with ProcessPoolExecutor(
        job.workers, context, initializer=_init_worker, initargs=(job, cache.folder)
    ) as pool:
        for _ in pool.map(_track_job, todo):
            bar.update()
    bar.close()
    return TeacherTargets(cache, spec)


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
    with atomic_path(_part(target_folder(cache, spec), track)) as tmp, open(tmp, "wb") as handle:
        np.save(handle, rows.astype(np.float16))
    return track


def _stats(
    values: npt.NDArray[np.float16],
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    total = np.zeros(values.shape[1])
    square = np.zeros(values.shape[1])
    for lo in range(0, len(values), 65536):  # float64 sums in chunks: bounded memory
        chunk = np.asarray(values[lo : lo + 65536], dtype=np.float64)
        total += chunk.sum(0)
        square += (chunk**2).sum(0)
    mean = total / max(len(values), 1)
    std = np.sqrt(np.maximum(square / max(len(values), 1) - mean**2, 0.0))
    return mean.astype(np.float32), np.maximum(std, STD_FLOOR).astype(np.float32)

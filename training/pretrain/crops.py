"""Single crops for distillation alone: every target-grid crop is one example, jittered, split."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import torch

from clmr_embed.errors import DataError
from training.pretrain.cache import AudioCache, pcm_to_float
from training.pretrain.sampling import StepDataset, epoch_slice, step_seed
from training.pretrain.targets import TeacherTargets


class CropKey(NamedTuple):
    """One example of a step's batch: a grid crop and its start's shift from the grid point."""

    row: int  # index into GridCrops' crop table
    shift: int  # samples added to the grid start (clipped so the window stays in the track)


def validation_tracks(count: int, fraction: float, seed: int) -> npt.NDArray[np.bool_]:
    """Which of `count` tracks are held out: each with probability `fraction`, seeded per track.

    A pure function of (seed, track index), so the split survives a resume and a partial target
    cache growing; at least one track is held out whenever fraction > 0.
    """
    if fraction <= 0 or count == 0:
        return np.zeros(count, dtype=bool)
    draws = np.array([step_seed(seed, "validation", t) / 2.0**63 for t in range(count)])
    held = draws < fraction
    held[int(np.argmin(draws))] = True
    return held


class GridCrops(StepDataset):
    """Every crop on the teacher grid of the tracks that have targets, one crop per example.

    Without a contrastive term a second view of the same segment is only a correlated sample, so
    each example is its own crop: an epoch visits each grid crop of the training tracks once, and
    each visit starts up to `jitter` samples either side of the grid point (the target stays the
    grid point's: a shift far below the teacher's 3-s patch leaves its features nearly unchanged).

    Args:
        cache: the decoded corpus.
        targets: the teacher targets on the grid (tracks without them are left out).
        jitter: largest shift in samples.
        held: per track, True for the validation tracks (never trained on).
    """

    targets: TeacherTargets  # always present here

    def __init__(
        self,
        cache: AudioCache,
        targets: TeacherTargets,
        jitter: int,
        held: npt.NDArray[np.bool_],
    ) -> None:
        self.cache, self.targets, self.jitter = cache, targets, jitter
        self.window, self.hop = targets.spec.window, targets.spec.hop
        self.train = self._rows(targets.available & ~held)
        self.validation = self._rows(targets.available & held)
        if len(self.train) == 0:
            raise DataError(f"{targets.folder}: no training track has teacher targets yet")

    def _rows(self, tracks: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
        """Global grid rows (into the target table) of the selected tracks, in track order."""
        offsets = self.targets.offsets
        spans = [np.arange(offsets[t], offsets[t + 1]) for t in np.flatnonzero(tracks)]
        return np.concatenate([np.zeros(0, np.int64), *spans]).astype(np.int64)

    def __len__(self) -> int:
        return len(self.train)

    def __getitem__(self, key: CropKey) -> dict[str, torch.Tensor]:
        """{"x": float32 (1, window), "t": float32 (dim,) standardised target, "m": bool ()}."""
        return self.item(int(self.train[key.row]), key.shift)

    def item(self, row: int, shift: int = 0) -> dict[str, torch.Tensor]:
        """The example of global grid row `row`, its start shifted by `shift` samples."""
        track = int(np.searchsorted(self.targets.offsets, row, side="right") - 1)
        grid = row - int(self.targets.offsets[track])
        pcm = self.cache.track(track)
        start = int(np.clip(grid * self.hop + shift, 0, len(pcm) - self.window))
        target, mask = self.targets.lookup(np.array([track]), np.array([grid * self.hop]))
        return {
            "x": torch.from_numpy(pcm_to_float(pcm[start : start + self.window]))[None],
            "t": torch.from_numpy(target[0]),
            "m": torch.tensor(bool(mask[0])),
        }

    def validation_batch(self, limit: int) -> dict[str, torch.Tensor]:
        """At most `limit` held-out crops, spread evenly over the validation tracks, unshifted."""
        if len(self.validation) == 0:
            raise DataError("validation_fraction > 0 but no held-out track has teacher targets")
        pick = np.unique(np.linspace(0, len(self.validation) - 1, limit).round().astype(int))
        items = [self.item(int(self.validation[i])) for i in pick]
        return {k: torch.stack([it[k] for it in items]) for k in ("x", "t", "m")}

    remedy = "build more targets, or lower batch_size"

    def shortage(self, count: int) -> str:
        """The too-few-crops message (steps_per_epoch)."""
        return f"{count} training crop(s) have teacher targets, fewer than one global batch of"

    def keys_for_step(
        self, step: int, seed: int, batch_size: int, rank: int = 0, world: int = 1
    ) -> list[CropKey]:
        """This rank's `batch_size` crops of global step `step`: a pure function of the step."""
        rows = epoch_slice(len(self), self.steps_per_epoch(batch_size * world), step, seed)
        # drawn for the whole global batch, then this rank's rows: the world size changes nothing
        draw = torch.Generator().manual_seed(step_seed(seed, "jitter", step))
        shifts = torch.randint(-self.jitter, self.jitter + 1, (len(rows),), generator=draw)
        mine = slice(rank * batch_size, (rank + 1) * batch_size)
        return [
            CropKey(int(r), int(s)) for r, s in zip(rows[mine], shifts[mine].tolist(), strict=True)
        ]

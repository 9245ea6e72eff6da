"""Contrastive pairs over the audio cache: two independent random crops of one segment per item."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import torch

from clmr_embed.constants import WINDOW_SAMPLES
from training.pretrain.cache import AudioCache, pcm_to_float
from training.pretrain.sampling import StepDataset, epoch_slice, step_seed
from training.pretrain.targets import TeacherTargets


class CropKey(NamedTuple):
    """One item of a step's batch: which segment, and where each view's window starts."""

    segment: int  # index into CropPairs' segment table
    start_i: int  # first sample of view i, relative to the segment start
    start_j: int  # first sample of view j, relative to the segment start


class CropPairs(StepDataset):
    """Items are segments of cached tracks (30 s by default, like MTAT clips); each item gives two
    independent random `window`-sample crops of its segment (CLMR v2's two views).

    A track of L samples gives max(1, L // segment_samples) segments; the last one absorbs the
    remainder, so every segment holds at least one window (the cache dropped shorter tracks).
    Segments of one track share a track id, for v1's same-track negative masking.

    Args:
        cache: the decoded corpus.
        window: samples per view (59049).
        segment_samples: item length (at least `window`); 0 makes each whole track one item.
    """

    def __init__(
        self,
        cache: AudioCache,
        window: int = WINDOW_SAMPLES,
        segment_samples: int = 0,
        targets: TeacherTargets | None = None,
    ) -> None:
        self.cache = cache
        self.window = window
        # With teacher targets, crop starts snap to their grid (segments start on it too).
        self.targets = targets
        self.grid = targets.spec.hop if targets is not None else 1
        tracks, starts, lengths = [], [], []
        segment = max(segment_samples, window)  # a segment must hold a whole window
        for track, length in enumerate(cache.lengths.tolist()):
            count = max(1, length // segment) if segment_samples else 1
            bounds = [k * segment for k in range(count)] + [length]
            tracks += [track] * count
            starts += bounds[:-1]
            lengths += [b - a for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        self.tracks = np.array(tracks, dtype=np.int64)
        self.starts = np.array(starts, dtype=np.int64)
        self.lengths = np.array(lengths, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.tracks)

    def __getitem__(self, key: CropKey) -> dict[str, torch.Tensor]:
        """Returns {"x_i", "x_j": float32 (1, window), "track": int64 ()}; with teacher targets
        also "t_i", "t_j" (float32 (dim,), standardised) and "m_i", "m_j" (bool: has a target)."""
        track = int(self.tracks[key.segment])
        seg = self.cache.track(track)[self.starts[key.segment] :]
        item = {
            "x_i": _window(seg, key.start_i, self.window),
            "x_j": _window(seg, key.start_j, self.window),
            "track": torch.tensor(track),
        }
        if self.targets is not None:
            starts = self.starts[key.segment] + np.array([key.start_i, key.start_j])
            rows, mask = self.targets.lookup(np.array([track, track]), starts)
            item["t_i"], item["t_j"] = torch.from_numpy(rows[0]), torch.from_numpy(rows[1])
            item["m_i"], item["m_j"] = torch.tensor(bool(mask[0])), torch.tensor(bool(mask[1]))
        return item

    remedy = "add audio, or lower batch_size or segment_seconds"

    def shortage(self, count: int) -> str:
        """The too-few-segments message (steps_per_epoch)."""
        return f"the corpus has {count} segment(s), fewer than one global batch of"

    def keys_for_step(
        self, step: int, seed: int, batch_size: int, rank: int = 0, world: int = 1
    ) -> list[CropKey]:
        """This rank's `batch_size` items of global step `step`, a pure function of its arguments.

        Epoch e visits the segments in a seeded permutation; rank r takes slice r of each global
        batch (a rank-sliced DistributedSampler without state). Crop starts are uniform over
        every position where a whole window fits, drawn independently for the two views.
        """
        # drawn for the whole global batch, then this rank's rows: the world size changes nothing
        spe = self.steps_per_epoch(batch_size * world)
        segments = epoch_slice(len(self), spe, step, seed)
        crop = torch.Generator().manual_seed(step_seed(seed, "crop", step))
        # every start where a whole window fits (on the teacher grid when distilling)
        room = torch.from_numpy((self.lengths[segments.numpy()] - self.window) // self.grid + 1)
        starts = (
            torch.rand(len(segments), 2, generator=crop, dtype=torch.float64) * room[:, None]
        ).long() * self.grid
        mine = slice(rank * batch_size, (rank + 1) * batch_size)
        segments, starts = segments[mine], starts[mine]
        return [
            CropKey(int(s), int(a), int(b))
            for s, (a, b) in zip(segments, starts.tolist(), strict=True)
        ]


def _window(segment: npt.NDArray[np.int16], start: int, window: int) -> torch.Tensor:
    return torch.from_numpy(pcm_to_float(segment[start : start + window]))[None]

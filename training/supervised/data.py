"""Labelled clips decoded once (training.pretrain.cache): random training crops, all windows."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

from clmr_embed.audio import frame
from clmr_embed.constants import WINDOW_SAMPLES
from clmr_embed.errors import DataError
from training.linear.dataset import LabelledSet
from training.linear.probe import window_targets
from training.pretrain.cache import AudioCache, build_cache, pcm_to_float
from training.pretrain.sampling import epoch_slice, step_seed

Indices = npt.NDArray[np.int64]


@dataclass(frozen=True)
class ClipAudio:
    """The labelled items that have cached audio, each item's track in the cache."""

    data: LabelledSet  # items with at least one window of audio, in label order
    cache: AudioCache  # the decoded clips (shared with every run over the same files)
    tracks: Indices  # cache track of each item of `data`
    dropped: int  # items left out: listed without audio, undecodable or shorter than a window

    def windows(self, item: int) -> npt.NDArray[np.float32]:
        """All back-to-back windows of an item, float32 [n, window] (what extract and tag cut)."""
        pcm = pcm_to_float(self.cache.track(int(self.tracks[item])))
        return np.array(frame(pcm, WINDOW_SAMPLES, WINDOW_SAMPLES).windows)  # writable: torch

    def crops(self, items: Indices, seed: int) -> torch.Tensor:
        """One random window of each item, float32 (len(items), 1, window), seeded."""
        rng = np.random.default_rng(seed)
        rows = []
        for item in items:
            pcm = self.cache.track(int(self.tracks[item]))
            start = int(rng.integers(0, len(pcm) - WINDOW_SAMPLES + 1))
            rows.append(pcm_to_float(pcm[start : start + WINDOW_SAMPLES]))
        return torch.from_numpy(np.stack(rows))[:, None, :]

    def batch(self, train: Indices, step: int, seed: int, size: int) -> tuple[torch.Tensor, ...]:
        """Step `step`'s (crops, targets): a pure function of the step, so resuming repeats it.

        Each epoch visits the training items in a seeded order; a set smaller than `size` makes
        every batch the whole set.
        """
        steps_per_epoch = max(1, len(train) // size)
        picked = train[epoch_slice(len(train), steps_per_epoch, step, seed).numpy()]
        targets = window_targets(self.data, picked, np.arange(len(picked)))
        return self.crops(picked, step_seed(seed, "crop", step)), targets


def clip_audio(
    data: LabelledSet, sample_rate: int, cache_root: Path | None = None, progress: bool = True
) -> ClipAudio:
    """Decode the items' audio once into the shared cache, and find each item's track there.

    Raises:
        DataError: no item has a window of audio.
    """
    # Evaluation sets are what this trainer is for: the pre-training leak guard does not apply.
    paths = list(data.paths)
    cache, _ = build_cache(
        paths, sample_rate, cache_root=cache_root, allow_probe_sets=True, progress=progress
    )
    resolved = [p.resolve() for p in data.paths]
    # build_cache names tracks relative to the common folder of the resolved files
    common = Path(os.path.commonpath(resolved)) if len(set(resolved)) > 1 else resolved[0].parent
    where = {common / rel: t for t, rel in enumerate(cache.relpaths)}
    keep = [i for i, p in enumerate(resolved) if p in where]
    if not keep:
        raise DataError(f"none of the {len(data)} labelled clips has one window of audio")
    tracks = np.array([where[resolved[i]] for i in keep], dtype=np.int64)
    return ClipAudio(data.select(keep), cache, tracks, len(data) - len(keep))

"""Crop pairs over the cache: segments, independent views, batches as pure functions of the step."""

import numpy as np
import pytest
import soundfile as sf

torch = pytest.importorskip("torch")

from clmr_embed.constants import SAMPLE_RATE, WINDOW_SAMPLES
from clmr_embed.errors import DataError
from training.pretrain.cache import build_cache
from training.pretrain.data import CropPairs
from training.pretrain.sampling import StepBatchSampler


def test_two_views_are_independent_crops_and_batches_are_pure_functions_of_the_step(tmp_path):
    rng = np.random.default_rng(1)
    for k, seconds in enumerate((7.0, 7.0, 9.0, 3.0, 6.0)):
        noise = 0.1 * rng.standard_normal(round(seconds * SAMPLE_RATE))
        sf.write(tmp_path / f"{k}.wav", noise.astype(np.float32), SAMPLE_RATE)
    cache, _ = build_cache([tmp_path], SAMPLE_RATE, cache_root=tmp_path / "c", progress=False)
    pairs = CropPairs(cache, segment_samples=SAMPLE_RATE)  # < one window: segments of 59049
    assert pairs.tracks.tolist() == [0, 0, 1, 1, 2, 2, 2, 3, 4, 4]
    assert pairs.starts.tolist()[:3] == [0, WINDOW_SAMPLES, 0]
    assert pairs.lengths.tolist()[:2] == [WINDOW_SAMPLES, 7 * SAMPLE_RATE - WINDOW_SAMPLES]
    assert len(CropPairs(cache)) == 5  # 0: one item per track
    keys = pairs.keys_for_step(5, seed=1, batch_size=4)
    assert keys == pairs.keys_for_step(5, seed=1, batch_size=4)
    assert keys != pairs.keys_for_step(6, seed=1, batch_size=4)
    roomy = max(keys, key=lambda k: pairs.lengths[k.segment])  # a segment longer than a window
    assert roomy.start_i != roomy.start_j
    item = pairs[roomy]
    assert item["x_i"].shape == item["x_j"].shape == (1, WINDOW_SAMPLES)
    assert item["x_i"].dtype == torch.float32 and not torch.equal(item["x_i"], item["x_j"])
    assert int(item["track"]) == pairs.tracks[roomy.segment]
    # two ranks split each global batch: disjoint halves of one epoch's permutation
    epoch = [pairs.keys_for_step(s, 1, 1, rank=r, world=2) for s in range(5) for r in range(2)]
    assert sorted(k.segment for keys in epoch for k in keys) == list(range(10))
    # and together they hold exactly what one process holds of the same global batch, crops too
    for step in range(5):
        ranks = [k for r in range(2) for k in pairs.keys_for_step(step, 1, 1, rank=r, world=2)]
        assert ranks == pairs.keys_for_step(step, 1, 2)
    assert all(0 <= k.start_i <= pairs.lengths[k.segment] - WINDOW_SAMPLES for k in keys)
    sampler = StepBatchSampler(pairs, range(4, 6), seed=1, batch_size=4)
    assert list(sampler) == [pairs.keys_for_step(s, 1, 4) for s in (4, 5)]
    with pytest.raises(DataError, match="fewer than one global batch"):
        pairs.steps_per_epoch(11)

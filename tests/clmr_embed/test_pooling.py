"""The one track-mean rule: float64 sums, float32 out, the same in one go or chunk by chunk."""

from __future__ import annotations

import numpy as np
import pytest

from clmr_embed.pooling import TrackMean, track_mean


def test_mean_sums_in_float64() -> None:
    # 1e4 rows of 1.0 next to one large value: a float32 running sum loses the small ones.
    rows = np.ones((10001, 2), np.float32)
    rows[0] = 3e7
    expected = (rows.astype(np.float64).sum(axis=0) / len(rows)).astype(np.float32)
    got = track_mean(rows)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)


def test_chunked_mean_equals_the_one_shot_mean() -> None:
    rows = np.random.default_rng(0).standard_normal((300, 8)).astype(np.float32)
    mean = TrackMean(8)
    for start in range(0, 300, 64):
        mean.add(rows[start : start + 64])
    assert mean.count == 300
    np.testing.assert_allclose(mean.value(), track_mean(rows), rtol=0, atol=1e-7)


def test_no_rows_has_no_mean() -> None:
    with pytest.raises(ValueError, match="at least one window"):
        TrackMean(3).value()

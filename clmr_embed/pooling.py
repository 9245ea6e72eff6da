"""The one track-level rule: a track's vector is the mean of its window rows, summed in float64."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


class TrackMean:
    """The mean of rows added chunk by chunk: float64 sums, a float32 result.

    The store's track vectors, the Python API's `mean` and a track's tag scores all come from
    here, so they agree bit for bit on the same windows.
    """

    def __init__(self, width: int) -> None:
        self._sum = np.zeros(width, np.float64)
        self.count = 0  # rows added so far

    def add(self, rows: npt.ArrayLike) -> None:
        """Add rows (n, width)."""
        data = np.asarray(rows)
        self._sum += data.sum(axis=0, dtype=np.float64)
        self.count += len(data)

    def value(self) -> npt.NDArray[np.float32]:
        """The mean row, float32 (width,)."""
        if self.count == 0:
            raise ValueError("a track needs at least one window for its mean")
        return (self._sum / self.count).astype(np.float32)


def track_mean(rows: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """The mean of window rows (n, width) by the TrackMean rule, float32 (width,)."""
    data = np.asarray(rows)
    mean = TrackMean(data.shape[1])
    mean.add(data)
    return mean.value()

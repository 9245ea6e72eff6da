"""Cut mono signals into model windows with CLMR's tail policy, in one go or streamed."""

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from clmr_embed.errors import ConfigError

Windows = npt.NDArray[np.float32]
Starts = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Framed:
    """Windows cut from one signal."""

    windows: Windows  # float32 [n, window]; may be a read-only view into the signal
    starts: Starts  # int64 [n]: sample offset of each window in the signal
    padded: bool  # True when the signal was shorter than one window and was zero-padded


def frame(samples: npt.ArrayLike, window: int, hop: int) -> Framed:
    """Cut `samples` into windows of `window` samples every `hop` samples.

    CLMR's policy: a partial last window is dropped, except that a signal shorter than one
    window becomes one zero-padded window (so every non-empty track gets an embedding).

    Args:
        samples: float32 [n] mono signal.
        window: window length in samples.
        hop: distance between window starts; `hop == window` (CLMR's default) gives no overlap.

    Returns:
        Framed with windows [k, window] (a strided view, no copy, when k > 1) and starts [k].
    """
    _check(window, hop)
    data = _as_signal(samples)
    if data.size == 0:
        return Framed(_empty(window), np.zeros(0, np.int64), padded=False)
    if data.size < window:
        return Framed(_pad(data, window), np.zeros(1, np.int64), padded=True)
    windows = np.lib.stride_tricks.sliding_window_view(data, window)[::hop]
    return Framed(windows, np.arange(windows.shape[0], dtype=np.int64) * hop, padded=False)


def starts_seconds(starts: npt.ArrayLike, sample_rate: int) -> npt.NDArray[np.float32]:
    """Window start offsets in samples -> seconds, float32 [n]."""
    return (np.asarray(starts, dtype=np.float64) / sample_rate).astype(np.float32)


class Framer:
    """Streaming `frame`: push blocks of any size, get each complete window once.

    The windows and starts over any split of a signal into blocks equal those of `frame` on the
    whole signal. Memory holds at most one window plus one block.
    """

    def __init__(self, window: int, hop: int) -> None:
        _check(window, hop)
        self.window = window
        self.hop = hop
        self._buffer = np.zeros(0, np.float32)
        self._buffer_start = 0  # signal offset of self._buffer[0]
        self._next_start = 0  # signal offset of the next window to emit
        self._total = 0

    @property
    def total_samples(self) -> int:
        """Samples pushed so far."""
        return self._total

    def push(self, block: npt.ArrayLike) -> tuple[Windows, Starts]:
        """Add a block; return the windows [k, window] it completes and their starts [k]."""
        data = _as_signal(block)
        self._buffer = np.concatenate([self._buffer, data]) if self._buffer.size else data
        self._total += data.size
        last_start = self._total - self.window
        if last_start < self._next_start:
            self._drop_before(self._next_start)
            return _empty(self.window), np.zeros(0, np.int64)
        starts = np.arange(self._next_start, last_start + 1, self.hop, dtype=np.int64)
        views = np.lib.stride_tricks.sliding_window_view(self._buffer, self.window)
        windows = views[starts - self._buffer_start]  # fancy indexing copies: the buffer moves on
        self._next_start = int(starts[-1]) + self.hop
        self._drop_before(self._next_start)
        return windows, starts

    def finish(self) -> tuple[Windows, Starts, bool]:
        """End of signal: the zero-padded single window if the signal was shorter than one."""
        if 0 < self._total < self.window:
            return _pad(self._buffer, self.window), np.zeros(1, np.int64), True
        return _empty(self.window), np.zeros(0, np.int64), False

    def _drop_before(self, offset: int) -> None:
        """Forget samples before `offset` (0 until a first window: a short signal stays whole)."""
        drop = min(offset, self._total) - self._buffer_start
        if drop > 0:
            self._buffer = self._buffer[drop:].copy()  # copy so the old block can be freed
            self._buffer_start += drop


def _check(window: int, hop: int) -> None:
    if window <= 0 or hop <= 0:
        raise ConfigError(f"window ({window}) and hop ({hop}) must be positive sample counts")


def _as_signal(samples: npt.ArrayLike) -> npt.NDArray[np.float32]:
    data = np.asarray(samples, dtype=np.float32)
    if data.ndim != 1:
        raise ConfigError(f"expected a mono signal [n], got shape {data.shape}; downmix first")
    return data


def _pad(data: npt.NDArray[np.float32], window: int) -> Windows:
    out = np.zeros((1, window), np.float32)
    out[0, : data.size] = data
    return out


def _empty(window: int) -> Windows:
    return np.zeros((0, window), np.float32)

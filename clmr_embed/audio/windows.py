"""Model windows with CLMR's tail policy: from a signal in memory, or streamed from a file."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from clmr_embed.audio.decode import stream_audio
from clmr_embed.audio.decoders import AudioInfo
from clmr_embed.constants import MAX_HOP_SECONDS
from clmr_embed.errors import ConfigError

Windows = npt.NDArray[np.float32]
Starts = npt.NDArray[np.int64]
FLAGS = ("short", "silent", "truncated", "gaps")  # DecodedFile.flags, in this order
TRUNCATED_FRACTION = 0.03  # of the header's duration: more missing is a cut-short file ...
TRUNCATED_SLACK_S = 0.5  # ... when it is also more than this (AAC priming, a partial last frame)


@dataclass(frozen=True)
class WindowSpec:
    """How a model cuts audio into windows."""

    sample_rate: int  # Hz the model expects
    window_samples: int  # samples per window
    hop_samples: int  # samples between window starts

    def __post_init__(self) -> None:
        if self.sample_rate <= 0:
            raise ConfigError(f"sample_rate must be positive, got {self.sample_rate}")
        _check(self.window_samples, self.hop_samples)

    @classmethod
    def from_hop_seconds(
        cls, sample_rate: int, window_samples: int, hop_seconds: float | None
    ) -> WindowSpec:
        """A spec whose hop is `hop_seconds` (None: one window, CLMR's back-to-back chunks)."""
        if hop_seconds is None:
            return cls(sample_rate, window_samples, window_samples)
        if not (hop_seconds > 0 and math.isfinite(hop_seconds)) or hop_seconds > MAX_HOP_SECONDS:
            raise ConfigError(
                f"the hop must be a positive number of seconds up to {MAX_HOP_SECONDS:g}, "
                f"got {hop_seconds}"
            )
        return cls(sample_rate, window_samples, max(1, round(hop_seconds * sample_rate)))


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


# --- the one path from a file to windows ---


class WindowChunk(NamedTuple):
    """Consecutive windows of one file."""

    windows: Windows  # float32 (k, window)
    starts: Starts  # int64 (k,): sample offset of each window in the decoded file


@dataclass(frozen=True)
class DecodedFile:
    """What decoding a whole file found out, known once its windows are all streamed."""

    duration_s: float  # decoded length at the model's rate
    source_rate: int  # the file's own sample rate
    channels: int  # the file's channel count
    padded: bool  # shorter than one window: one zero-padded window
    silent: bool  # digital silence: every sample is exactly zero
    truncated: bool = False  # decoded clearly shorter than its header says: cut short
    gaps: bool = False  # damaged packets were skipped: the audio has small holes

    @property
    def flags(self) -> tuple[str, ...]:
        """Some of "short", "silent", "truncated", "gaps": the store's and the reports' flags."""
        named = zip(FLAGS, (self.padded, self.silent, self.truncated, self.gaps), strict=True)
        return tuple(name for name, value in named if value)


def is_truncated(header_s: float, decoded_s: float, stated: bool = True) -> bool:
    """True when a decoded duration falls short of the header's by more than codec slack.

    Lossy codecs add or drop up to a few frames (priming, padding): a file counts as cut short
    when it misses more than TRUNCATED_FRACTION of the stated duration and over
    TRUNCATED_SLACK_S seconds. An estimated duration (MP3 without a Xing frame) proves nothing.
    """
    if not stated or not math.isfinite(header_s):
        return False
    missing = header_s - decoded_s
    return missing > TRUNCATED_SLACK_S and missing > TRUNCATED_FRACTION * header_s


class WindowStream:
    """A file's windows at the model's rate, in chunks of `chunk_windows` (the last may be less).

    The one path from an audio file to model windows (extract's workers, `tag`,
    Embedder.embed_file): decoding, downmix, resampling and framing all stream, so memory stays
    near one chunk plus one decoded block whatever the file's length and the hop (a block is
    framed a chunk's worth of hops at a time, so a 1-sample hop never makes a block's windows
    all at once). Open errors raise here, decode errors during the iteration
    (AudioDecodeError); after it, `decoded` says the duration and the flags.
    """

    def __init__(
        self, path: Path, spec: WindowSpec, *, chunk_windows: int = 64, decoder: str = "av"
    ) -> None:
        if chunk_windows < 1:
            raise ConfigError(f"chunk_windows must be at least 1, got {chunk_windows}")
        self.spec = spec
        self.chunk_windows = chunk_windows
        self.info: AudioInfo
        self.info, self._blocks = stream_audio(Path(path), spec.sample_rate, decoder=decoder)
        self._decoded: DecodedFile | None = None

    @property
    def decoded(self) -> DecodedFile:
        """Duration and flags of the file; available once the iteration has ended."""
        if self._decoded is None:
            raise RuntimeError("a WindowStream knows the whole file only after its last chunk")
        return self._decoded

    def __iter__(self) -> Iterator[WindowChunk]:
        framer = Framer(self.spec.window_samples, self.spec.hop_samples)
        pending = _Pending()
        peak = 0.0
        step = self.chunk_windows * self.spec.hop_samples  # samples that complete a chunk
        for block in self._blocks:
            if block.size:
                peak = max(peak, float(np.abs(block).max()))
            for offset in range(0, block.size, step):
                pending.add(*framer.push(block[offset : offset + step]))
                while len(pending) >= self.chunk_windows:
                    yield pending.take(self.chunk_windows)
        windows, starts, padded = framer.finish()
        pending.add(windows, starts)
        while len(pending):
            yield pending.take(self.chunk_windows)
        duration_s = framer.total_samples / self.spec.sample_rate
        report = self._blocks.report
        self._decoded = DecodedFile(
            duration_s=duration_s,
            source_rate=self.info.source_rate,
            channels=self.info.channels,
            padded=padded,
            silent=peak == 0.0,
            truncated=is_truncated(self.info.duration_s, duration_s, self.info.duration_stated)
            or (bool(report.stopped) and not self.info.duration_stated),
            gaps=report.gaps > 0,
        )


class _Pending:
    """Windows framed but not yet handed out, re-cut into chunks of a fixed size."""

    def __init__(self) -> None:
        self.windows: list[Windows] = []
        self.starts: list[Starts] = []

    def __len__(self) -> int:
        return sum(len(w) for w in self.windows)

    def add(self, windows: Windows, starts: Starts) -> None:
        if len(windows):
            self.windows.append(windows)
            self.starts.append(starts)

    def take(self, n: int) -> WindowChunk:
        windows, starts = np.concatenate(self.windows), np.concatenate(self.starts)
        self.windows, self.starts = [windows[n:]], [starts[n:]]
        return WindowChunk(windows[:n], starts[:n])

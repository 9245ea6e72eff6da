"""soxr HQ resampling, in memory or streamed chunk by chunk, and the sane range of source rates."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soxr

from clmr_embed.errors import AudioDecodeError, ConfigError
from clmr_embed.names import shown

RESAMPLE_QUALITY = "HQ"
MIN_SOURCE_RATE = 1000  # Hz; below this a "rate" is a corrupt header, not audio
MAX_SOURCE_RATE = 768000  # Hz; the highest rate real converters produce
Samples = npt.NDArray[np.float32]


def resample(samples: npt.ArrayLike, source_rate: int, target_rate: int) -> Samples:
    """Resample an in-memory signal [n] or [n, channels] with soxr HQ; float32 out, same layout."""
    data = np.asarray(samples, dtype=np.float32)
    check_rate(source_rate, "the samples")
    if target_rate <= 0:
        raise ConfigError(f"target_rate must be > 0, got {target_rate}")
    if source_rate == target_rate or data.shape[0] == 0:
        return data
    resampled: Samples = soxr.resample(data, source_rate, target_rate, quality=RESAMPLE_QUALITY)
    return resampled


def resample_chunks(
    path: Path, decoded: Iterator[tuple[int, Samples]], in_block: int, rate: int
) -> Iterator[Samples]:
    """Resample source chunks to `rate`; a stream whose rate changes restarts the resampler."""
    stream: soxr.ResampleStream | None = None
    stream_rate = 0
    for source_rate, chunk in _rechunk_rated(decoded, in_block):
        if not np.isfinite(chunk).all():
            raise AudioDecodeError(f"{shown(path)}: contains NaN/inf samples; re-export the file")
        if source_rate != stream_rate:
            if stream is not None:
                yield stream.resample_chunk(np.zeros(0, np.float32), last=True)
            check_rate(source_rate, shown(path))
            stream_rate = source_rate
            stream = None if source_rate == rate else _resampler(source_rate, rate)
        yield chunk if stream is None else stream.resample_chunk(chunk)
    if stream is not None:
        yield stream.resample_chunk(np.zeros(0, np.float32), last=True)


def _resampler(source_rate: int, rate: int) -> soxr.ResampleStream:
    return soxr.ResampleStream(source_rate, rate, 1, dtype="float32", quality=RESAMPLE_QUALITY)


def _rechunk_rated(
    decoded: Iterator[tuple[int, Samples]], size: int
) -> Iterator[tuple[int, Samples]]:
    """Group small decoded frames into chunks of about `size` samples, never mixing rates."""
    pending: list[Samples] = []
    pending_rate, count = 0, 0
    for rate, chunk in decoded:
        if pending and (rate != pending_rate or count >= size):
            yield pending_rate, np.concatenate(pending)
            pending, count = [], 0
        pending.append(chunk)
        pending_rate, count = rate, count + chunk.size
    if pending:
        yield pending_rate, np.concatenate(pending)


def rechunk(chunks: Iterator[Samples], size: int) -> Iterator[Samples]:
    """Re-block a stream of arrays into arrays of exactly `size` samples (the last may be short).

    Chunks are copied into a preallocated block, so at most two blocks live at once: the one the
    consumer holds and the one being filled.
    """
    block, filled = np.empty(size, np.float32), 0
    for chunk in chunks:
        while chunk.size:
            take = min(size - filled, chunk.size)
            block[filled : filled + take] = chunk[:take]
            filled, chunk = filled + take, chunk[take:]
            if filled == size:
                yield block
                block, filled = np.empty(size, np.float32), 0
    if filled:
        yield block[:filled]


def check_rate(rate: int, where: str) -> None:
    """Raise AudioDecodeError naming `where` unless `rate` is a plausible audio rate."""
    if not MIN_SOURCE_RATE <= rate <= MAX_SOURCE_RATE:
        raise AudioDecodeError(
            f"{where}: sample rate {rate} Hz is outside {MIN_SOURCE_RATE}-{MAX_SOURCE_RATE} Hz;"
            " the header is probably corrupt"
        )

"""FFmpeg's decoded frames as mono float32 blocks: joined, converted and downmixed per block."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from clmr_embed.audio.resample import Samples

# Full scale of integer PCM, to map decoded integers onto [-1, 1) as FFmpeg and libsndfile do.
INT_SCALE = {np.dtype(np.int16): 2.0**15, np.dtype(np.int32): 2.0**31, np.dtype(np.int64): 2.0**63}
# FFmpeg frames (1,152 samples of MP3, 1,024 of AAC) joined before the float conversion and the
# downmix: per frame, those numpy calls cost more than FFmpeg's decoding (docs/performance.md).
BLOCK_FRAMES = 32
# numpy types of FFmpeg's sample formats (PyAV's own table; "p": planar, one buffer per channel)
DTYPES = {
    f"{name}{planar}": np.dtype(code)
    for name, code in (("u8", "u1"), ("s16", "i2"), ("s32", "i4"), ("flt", "f4"), ("dbl", "f8"))
    for planar in ("", "p")
}


def blocks(frames: Iterable[Frame]) -> Iterator[tuple[int, Samples]]:
    """(rate, mono float32) blocks of up to BLOCK_FRAMES frames, a new block at each change of
    rate, layout or format; what decoded before a cut is kept."""
    block: list[Frame] = []
    for frame in frames:
        if block and frame.key != block[0].key:  # a new rate, layout or format mid-stream
            yield block[0].rate, downmix(block)
            block = []
        block.append(frame)
        if len(block) >= BLOCK_FRAMES:
            yield frame.rate, downmix(block)
            block = []
    if block:  # also after a cut: what decoded before it is kept
        yield block[0].rate, downmix(block)


@dataclass(frozen=True)
class Frame:
    """One decoded FFmpeg frame's PCM, not yet converted."""

    rate: int
    planar: bool
    channels: int
    planes: tuple[npt.NDArray[Any], ...]  # one per channel (planar), or one interleaved

    @property
    def key(self) -> tuple[int, bool, int, np.dtype[Any]]:
        """Frames with equal keys can be joined into one block."""
        return self.rate, self.planar, self.channels, self.planes[0].dtype


def pcm(frame: Any) -> Frame:
    """A frame's planes as arrays over FFmpeg's buffers (no copy; to_ndarray's vstack is one)."""
    planar, channels = frame.format.is_planar, frame.layout.nb_channels
    dtype = DTYPES.get(frame.format.name)
    if dtype is None:  # not in PyAV's table either: to_ndarray raises the reason
        data = frame.to_ndarray()
        data = data if planar else data.reshape(-1, channels).T
        return Frame(frame.sample_rate, True, channels, tuple(data))  # one plane per channel
    count = frame.samples if planar else frame.samples * channels
    planes = tuple(np.frombuffer(p, dtype=dtype, count=count) for p in frame.planes)
    return Frame(frame.sample_rate, planar, channels, planes)


def downmix(block: list[Frame]) -> Samples:
    """Frames of one key as one mono float32 array: one conversion and one mean per block
    instead of per frame (the same values, sample by sample)."""
    if block[0].planar:  # [channels, n]: each channel's samples joined over the frames
        data = np.stack([np.concatenate(c) for c in zip(*(f.planes for f in block), strict=True)])
    else:  # packed: channels interleave in one row
        data = np.concatenate([f.planes[0] for f in block]).reshape(-1, block[0].channels).T
    mono: Samples = to_float(data).mean(axis=0, dtype=np.float32)
    return mono


def to_float(data: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    """Map decoded PCM of any sample format onto float32 in [-1, 1]."""
    if data.dtype == np.uint8:
        return (data.astype(np.float32) - 128.0) / 128.0
    if data.dtype in INT_SCALE:
        return (data / INT_SCALE[data.dtype]).astype(np.float32)
    return data.astype(np.float32, copy=False)

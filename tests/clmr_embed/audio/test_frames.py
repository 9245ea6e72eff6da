"""FFmpeg frames joined into blocks: the same samples as frame by frame, split where they must."""

from __future__ import annotations

import av
import numpy as np
import pytest

from clmr_embed.audio.frames import BLOCK_FRAMES, blocks, downmix, pcm, to_float


def _frame(data: np.ndarray, fmt: str, layout: str, rate: int = 8000) -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(data, fmt, layout)
    frame.sample_rate = rate
    return frame


def _frame_by_frame(frame: av.AudioFrame) -> np.ndarray:
    """The downmix of one frame on its own (what the decoder did before it joined frames)."""
    data = frame.to_ndarray()
    data = data if frame.format.is_planar else data.reshape(-1, frame.layout.nb_channels).T
    return to_float(data).mean(axis=0, dtype=np.float32)


@pytest.mark.parametrize(
    ("fmt", "layout", "dtype"),
    [("fltp", "stereo", np.float32), ("s16", "stereo", np.int16), ("s16p", "stereo", np.int16),
     ("u8", "mono", np.uint8), ("dbl", "stereo", np.float64), ("s32p", "mono", np.int32)],
)  # fmt: skip
def test_a_block_of_frames_downmixes_as_each_frame_alone(fmt, layout, dtype) -> None:
    rng = np.random.default_rng(0)
    channels = 2 if layout == "stereo" else 1
    frames = []
    for n in (1152, 1152, 577):  # a short last frame too
        shape = (channels, n) if fmt.endswith("p") else (1, n * channels)
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            data = rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
        else:
            data = rng.uniform(-1, 1, size=shape).astype(dtype)
        frames.append(_frame(data, fmt, layout))
    expected = np.concatenate([_frame_by_frame(f) for f in frames])
    joined = downmix([pcm(f) for f in frames])
    assert joined.dtype == np.float32 and np.array_equal(joined, expected)


def test_a_new_rate_or_layout_mid_stream_starts_a_new_block() -> None:
    mono = np.full((1, 1152), 0.5, dtype=np.float32)
    stereo = np.stack([mono[0], -mono[0]])
    frames = [_frame(mono, "fltp", "mono", 8000)] * 3 + [_frame(mono, "fltp", "mono", 16000)]
    frames += [_frame(stereo, "fltp", "stereo", 16000)] * 2
    joined = list(blocks(map(pcm, frames)))
    assert [(rate, len(samples)) for rate, samples in joined] == [
        (8000, 3 * 1152), (16000, 1152), (16000, 2 * 1152)
    ]  # fmt: skip
    assert np.all(joined[0][1] == 0.5) and np.all(joined[2][1] == 0.0)


def test_long_streams_come_in_blocks_of_frames() -> None:
    frame = _frame(np.zeros((1, 1024), dtype=np.float32), "fltp", "mono")
    sizes = [len(s) for _, s in blocks([pcm(frame)] * (2 * BLOCK_FRAMES + 1))]
    assert sizes == [BLOCK_FRAMES * 1024] * 2 + [1024]

"""Tests of clmr_embed.audio.windows: CLMR's tail policy, hops, the Framer, the file stream."""

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from clmr_embed.audio import Framer, WindowSpec, WindowStream, frame, load_audio, starts_seconds
from clmr_embed.audio.windows import is_truncated
from clmr_embed.errors import AudioDecodeError, ConfigError
from tests.fixtures.audio import write_audio, write_sine

W = 9  # a small window keeps the arithmetic visible


def ramp(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.float32)


def test_exactly_one_window():
    out = frame(ramp(W), W, W)
    assert out.windows.shape == (1, W) and out.windows.dtype == np.float32
    np.testing.assert_array_equal(out.windows[0], ramp(W))
    assert out.starts.tolist() == [0] and out.starts.dtype == np.int64
    assert not out.padded


def test_one_sample_over_drops_the_partial_tail():
    out = frame(ramp(W + 1), W, W)
    assert out.starts.tolist() == [0] and not out.padded


def test_one_sample_short_is_zero_padded_to_one_window():
    out = frame(ramp(W - 1) + 1, W, W)
    assert out.padded and out.starts.tolist() == [0]
    np.testing.assert_array_equal(out.windows[0], np.append(ramp(W - 1) + 1, 0))


def test_empty_gives_no_windows():
    out = frame(np.zeros(0, np.float32), W, W)
    assert out.windows.shape == (0, W) and out.starts.shape == (0,) and not out.padded


def test_non_overlapping_by_default_policy():
    out = frame(ramp(3 * W + 4), W, W)
    assert out.starts.tolist() == [0, W, 2 * W]
    np.testing.assert_array_equal(out.windows.ravel(), ramp(3 * W))


def test_hop_smaller_than_window_overlaps():
    out = frame(ramp(20), W, 4)
    assert out.starts.tolist() == [0, 4, 8]  # 12 + 9 > 20
    for row, start in zip(out.windows, out.starts, strict=True):
        np.testing.assert_array_equal(row, ramp(20)[start : start + W])


def test_hop_larger_than_window_leaves_gaps():
    out = frame(ramp(40), W, 15)
    assert out.starts.tolist() == [0, 15, 30]
    np.testing.assert_array_equal(out.windows[2], ramp(40)[30:39])


def test_frame_is_a_view_not_a_copy():
    signal = ramp(10 * W)
    assert np.shares_memory(frame(signal, W, W).windows, signal)


def test_bad_arguments_raise():
    with pytest.raises(ConfigError):
        frame(ramp(10), 0, 1)
    with pytest.raises(ConfigError):
        Framer(W, 0)
    with pytest.raises(ConfigError, match="mono"):
        frame(np.zeros((10, 2), np.float32), W, W)


def test_starts_seconds():
    secs = starts_seconds(np.array([0, 22050, 59049]), 22050)
    assert secs.dtype == np.float32
    np.testing.assert_allclose(secs, [0.0, 1.0, 59049 / 22050], rtol=1e-7)


def run_framer(blocks: list[np.ndarray], window: int, hop: int):
    framer = Framer(window, hop)
    windows, starts = [np.zeros((0, window), np.float32)], [np.zeros(0, np.int64)]
    for block in blocks:
        w, s = framer.push(block)
        assert w.shape == (s.size, window)
        windows.append(w)
        starts.append(s)
    w, s, padded = framer.finish()
    assert framer.total_samples == sum(b.size for b in blocks)
    return np.concatenate(windows + [w]), np.concatenate(starts + [s]), padded


def random_split(signal: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    cuts = np.sort(rng.integers(0, signal.size + 1, size=rng.integers(0, 8)))
    return np.split(signal, cuts)  # includes empty blocks on repeated cuts


def test_framer_equals_frame_over_random_splits():
    rng = np.random.default_rng(1234)
    for _ in range(500):
        window = int(rng.integers(1, 12))
        hop = int(rng.integers(1, 2 * window + 3))  # overlap, adjacent and gaps
        signal = rng.standard_normal(int(rng.integers(0, 60))).astype(np.float32)
        expected = frame(signal, window, hop)
        windows, starts, padded = run_framer(random_split(signal, rng), window, hop)
        np.testing.assert_array_equal(windows, expected.windows)
        np.testing.assert_array_equal(starts, expected.starts)
        assert padded == expected.padded


def test_framer_blocks_larger_and_smaller_than_window():
    signal = ramp(100)
    big, _, _ = run_framer([signal], W, W)
    tiny, starts, _ = run_framer([signal[i : i + 2] for i in range(0, 100, 2)], W, W)
    np.testing.assert_array_equal(big, tiny)
    assert starts.tolist() == list(range(0, 100 - W + 1, W))


def test_framer_short_signal_is_padded_only_at_finish():
    framer = Framer(W, W)
    w, s = framer.push(ramp(3))
    assert w.shape == (0, W) and s.size == 0
    w, s = framer.push(ramp(2))
    assert s.size == 0
    w, s, padded = framer.finish()
    assert padded and s.tolist() == [0]
    np.testing.assert_array_equal(w[0, :5], [0, 1, 2, 0, 1])
    assert not w[0, 5:].any()


def test_framer_keeps_bounded_memory():
    framer = Framer(W, W)
    for _ in range(50):
        framer.push(ramp(7))
        assert framer._buffer.size < W + 7


# --- WindowStream: the one path from a file to windows ---

SPEC = WindowSpec(sample_rate=8000, window_samples=2187, hop_samples=2187)


def _collect(stream: WindowStream) -> tuple[list[int], np.ndarray, np.ndarray]:
    chunks = list(stream)
    sizes = [len(c.windows) for c in chunks]
    windows = np.concatenate([c.windows for c in chunks])
    starts = np.concatenate([c.starts for c in chunks])
    return sizes, windows, starts


@pytest.mark.parametrize("hop", [2187, 1000, 3000])
def test_stream_equals_framing_the_decoded_file(tmp_path: Path, hop: int) -> None:
    path = write_sine(tmp_path / "tone.flac", 330, 40.0, 44100, channels=2)
    spec = WindowSpec(8000, 2187, hop)
    sizes, windows, starts = _collect(WindowStream(path, spec, chunk_windows=16))
    samples, _ = load_audio(path, 8000)
    expected = frame(samples, 2187, hop)
    np.testing.assert_array_equal(windows, expected.windows)
    np.testing.assert_array_equal(starts, expected.starts)
    assert sizes[:-1] == [16] * (len(sizes) - 1) and 0 < sizes[-1] <= 16  # exact chunks


def test_decoded_facts_after_the_last_chunk(tmp_path: Path) -> None:
    path = write_sine(tmp_path / "tone.wav", 440, 3.0, 16000, channels=2)
    stream = WindowStream(path, SPEC)
    with pytest.raises(RuntimeError, match="last chunk"):
        _ = stream.decoded
    list(stream)
    decoded = stream.decoded
    assert decoded.duration_s == pytest.approx(3.0, abs=1e-3)
    assert (decoded.source_rate, decoded.channels) == (16000, 2)
    assert decoded.flags == ()


def test_short_and_silent_files_are_flagged(tmp_path: Path) -> None:
    short = write_sine(tmp_path / "short.wav", 440, 0.1, 8000)
    silent = write_audio(tmp_path / "silent.wav", np.zeros(3 * 8000, np.float32), 8000)
    both = write_audio(tmp_path / "both.wav", np.zeros(100, np.float32), 8000)
    flags = {}
    for path in (short, silent, both):
        stream = WindowStream(path, SPEC)
        sizes, _, _ = _collect(stream)
        flags[path.name] = (stream.decoded.flags, sum(sizes))
    assert flags == {
        "short.wav": (("short",), 1),
        "silent.wav": (("silent",), 3 * 8000 // 2187),
        "both.wav": (("short", "silent"), 1),
    }


def test_open_errors_raise_at_once_and_decode_errors_while_iterating(tmp_path: Path) -> None:
    with pytest.raises(AudioDecodeError, match="missing.wav"):
        WindowStream(tmp_path / "missing.wav", SPEC)
    empty = write_audio(tmp_path / "empty.wav", np.zeros((0, 1), np.float32), 8000)
    stream = WindowStream(empty, SPEC)
    with pytest.raises(AudioDecodeError, match="no audio samples"):
        list(stream)


def test_bad_chunk_and_spec_values_raise_config_errors(tmp_path: Path) -> None:
    path = write_sine(tmp_path / "tone.wav", 440, 1.0, 8000)
    with pytest.raises(ConfigError, match="chunk_windows"):
        WindowStream(path, SPEC, chunk_windows=0)
    with pytest.raises(ConfigError):
        WindowSpec(8000, 2187, 0)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("inf"), float("nan"), 1e12])
def test_hop_seconds_refuses_bad_hops_without_naming_flags(bad: float) -> None:
    with pytest.raises(ConfigError, match="hop") as caught:
        WindowSpec.from_hop_seconds(22050, 59049, bad)
    assert "--" not in str(caught.value)


def test_hop_seconds_default_and_rounding() -> None:
    assert WindowSpec.from_hop_seconds(22050, 59049, None).hop_samples == 59049
    assert WindowSpec.from_hop_seconds(22050, 59049, 1.0).hop_samples == 22050
    assert WindowSpec.from_hop_seconds(22050, 59049, 1e-9).hop_samples == 1


def test_a_one_sample_hop_streams_in_bounded_chunks(tmp_path: Path) -> None:
    """--hop-seconds 0.001 once framed a whole block at once: 2.4 GB for a 10-s file."""
    song = write_sine(tmp_path / "song.wav", 440.0, 2.0, 8000)
    spec = WindowSpec(8000, 2187, 1)  # 13814 windows of 8.7 kB: 121 MB if made at once
    tracemalloc.start()
    try:
        stream = WindowStream(song, spec, chunk_windows=16)
        count = 0
        for chunk in stream:
            assert len(chunk.windows) <= 16
            np.testing.assert_array_equal(chunk.starts, np.arange(count, count + len(chunk.starts)))
            count += len(chunk.windows)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == 16000 - 2187 + 1
    assert peak < 12e6, f"peak {peak / 1e6:.0f} MB"  # a few chunks and one decoded block


@pytest.mark.parametrize(
    ("header_s", "decoded_s", "stated", "cut"),
    [
        (184.6, 1.8, True, True),  # the mp3
        (20.0, 19.9, True, False),  # codec padding, a partial last frame
        (2.0, 1.6, True, False),  # under the 0.5 s slack
        (600.0, 590.0, True, False),  # under 3 %
        (600.0, 570.0, True, True),
        (118.7, 40.0, False, False),  # a VBR mp3's bitrate estimate proves nothing
        (float("nan"), 1.0, True, False),  # no duration in the header
    ],
)
def test_is_truncated(header_s: float, decoded_s: float, stated: bool, cut: bool) -> None:
    assert is_truncated(header_s, decoded_s, stated) is cut

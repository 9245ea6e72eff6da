"""WindowStream, the one file -> windows path: equal to framing the whole file, bounded chunks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from clmr_embed.audio import WindowSpec, WindowStream, frame, load_audio
from clmr_embed.errors import AudioDecodeError, ConfigError
from tests.fixtures.audio import write_audio, write_sine

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

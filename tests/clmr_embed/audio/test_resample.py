"""Tests of clmr_embed.audio.resample: soxr HQ in memory, streamed equals one shot, rates."""

import numpy as np
import pytest

from clmr_embed.audio import load_audio, resample
from clmr_embed.errors import AudioDecodeError, ConfigError
from tests.fixtures.audio import peak_hz, sine, write_audio

SR = 22050


def test_resample_in_memory():
    tone = sine(440.0, 1.0, 44100)[:, 0]
    out = resample(tone, 44100, SR)
    assert out.dtype == np.float32 and out.size == SR
    assert abs(peak_hz(out, SR) - 440.0) < 1.0
    assert resample(tone, SR, SR).size == tone.size
    with pytest.raises(ConfigError):
        resample(tone, 44100, 0)
    with pytest.raises(AudioDecodeError, match="100 Hz"):
        resample(tone, 100, SR)


def test_streamed_resampling_equals_one_shot(tmp_path):
    # a 7 s file is resampled in 2 s chunks by the stream; soxr's stream equals its one-shot call
    tone = sine(1000.0, 7.0, 44100)[:, 0]
    path = write_audio(tmp_path / "tone.wav", tone, 44100)
    streamed, _ = load_audio(path, SR)
    np.testing.assert_allclose(streamed, resample(tone, 44100, SR), atol=1e-6)

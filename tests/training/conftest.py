"""Shared training fixtures: tiny synthetic corpora the objectives can learn from."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from clmr_embed.constants import SAMPLE_RATE

PITCHES = (110.0, 290.0, 740.0, 1900.0)  # Hz: one track each


def write_tones(folder: Path, harmonics: tuple[int, ...]) -> Path:
    """Four 3.5 s tones at PITCHES (with these harmonics, 1/h loud) plus a little noise."""
    rng = np.random.default_rng(0)
    t = np.arange(round(3.5 * SAMPLE_RATE)) / SAMPLE_RATE
    for k, freq in enumerate(PITCHES):
        tone = sum(np.sin(2 * np.pi * freq * h * t) / h for h in harmonics)
        wave = 0.3 * tone + 0.02 * rng.standard_normal(t.size)
        sf.write(folder / f"track{k}.wav", wave.astype(np.float32), SAMPLE_RATE)
    return folder


@pytest.fixture(scope="module")
def music(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Harmonic tones: distinct timbres for the SimCLR and distillation objectives."""
    return write_tones(tmp_path_factory.mktemp("music"), (1, 2, 3))


@pytest.fixture(scope="module")
def sines(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Pure sines: CPC learns to predict their future frames within a few steps."""
    return write_tones(tmp_path_factory.mktemp("sines"), (1,))

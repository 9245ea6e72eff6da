"""The shipped reference windows, and how they are rebuilt."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from clmr_embed.engines.reference import build_reference, load_reference, reference_path
from clmr_embed.errors import ModelArtifactError
from tests.fixtures.audio import write_audio


def test_shipped_reference_windows() -> None:
    ref = load_reference()
    assert ref.audio.dtype == np.int16 and ref.audio.shape == (12, 59049)
    assert ref.sample_rate == 22050 and "MIT" in ref.licence
    assert len(ref.sources) == 12 and all("@" in s for s in ref.sources)
    assert reference_path().stat().st_size < 2_000_000
    rms = np.sqrt(np.mean((ref.audio / 32767.0) ** 2, axis=1))
    assert rms.min() < 0.01 < 0.1 < rms.max()  # quiet and loud windows both


def test_windows_fit_any_model_rate_and_length() -> None:
    ref = load_reference()
    same = ref.windows(22050, 59049)
    np.testing.assert_array_equal(same, ref.audio.astype(np.float32) / 32767.0)
    other = ref.windows(8000, 2187)
    assert other.shape == (12, 2187) and other.dtype == np.float32
    padded = ref.windows(8000, 30000)  # longer than a clip at 8 kHz: zero-padded
    assert padded.shape == (12, 30000) and not padded[:, -5000:].any()


def test_build_reference_spreads_over_loudness(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    # 8 windows of rising loudness per file: quantiles low to high pick quiet to loud ones.
    levels = np.repeat(np.geomspace(0.001, 0.5, 8), 59049)
    files = [
        write_audio(tmp_path / f"{i}.wav", rng.standard_normal(levels.size) * levels * 0.5, 22050)
        for i in range(2)
    ]
    out = build_reference(files, tmp_path / "ref.npz", count=4)
    ref = load_reference(out)
    rms = np.sqrt(np.mean((ref.audio / 32767.0) ** 2, axis=1))
    assert ref.audio.shape == (4, 59049) and list(rms) == sorted(rms)
    assert [s.split("@")[0] for s in ref.sources] == ["0.wav", "1.wav", "0.wav", "1.wav"]


def test_unreadable_reference_is_an_artifact_error(tmp_path: Path) -> None:
    (tmp_path / "bad.npz").write_bytes(b"not numpy")
    with pytest.raises(ModelArtifactError, match="reinstall"):
        load_reference(tmp_path / "bad.npz")

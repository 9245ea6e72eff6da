"""The decode-once audio cache: build, reuse, skipped files, manifests, probe-set refusal."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from clmr_embed.constants import SAMPLE_RATE, WINDOW_SAMPLES
from clmr_embed.errors import ConfigError, DataError
from training.pretrain.cache import build_cache, pcm_to_float, read_manifest, resolve_inputs


def _sine(path: Path, freq: float, seconds: float, rate: int = SAMPLE_RATE, channels: int = 1):
    t = np.arange(round(seconds * rate)) / rate
    wave = (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.repeat(wave[:, None], channels, axis=1), rate)
    return wave


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    music = tmp_path / "music"
    _sine(music / "a.wav", 220, 4.0)
    _sine(music / "sub" / "b.wav", 440, 3.0, rate=44100, channels=2)  # resampled, downmixed
    _sine(music / "short.wav", 330, 1.0)  # < one window (2.68 s)
    (music / "bad.wav").write_bytes(b"RIFF0000WAVEnot really audio")
    return music


def test_build_reports_skipped_files_and_caches_pcm_at_the_model_rate(corpus, tmp_path):
    with pytest.warns(UserWarning, match="2 file\\(s\\) not cached"):
        cache, summary = build_cache([corpus], SAMPLE_RATE, cache_root=tmp_path / "c")
    assert summary.tracks == 2 and not summary.reused
    assert sorted(cache.relpaths) == ["a.wav", "sub/b.wav"]
    reasons = {Path(s.path).name: s.reason for s in summary.skipped}
    assert set(reasons) == {"short.wav", "bad.wav"}
    assert "shorter than one window" in reasons["short.wav"]
    a = cache.track(cache.relpaths.index("a.wav"))
    assert a.dtype == np.int16 and a.size == 4 * SAMPLE_RATE
    t = np.arange(a.size) / SAMPLE_RATE
    np.testing.assert_allclose(pcm_to_float(a), 0.5 * np.sin(2 * np.pi * 220 * t), atol=1e-4)
    b = cache.track(cache.relpaths.index("sub/b.wav"))
    assert abs(b.size - 3 * SAMPLE_RATE) <= 2  # 44.1 kHz resampled to 22.05 kHz
    assert cache.lengths.min() >= WINDOW_SAMPLES
    assert (summary.folder / "samples.i16").stat().st_size == 2 * int(cache.lengths.sum())


def test_same_files_reuse_the_cache_and_a_changed_file_rebuilds(corpus, tmp_path):
    root = tmp_path / "c"
    with pytest.warns(UserWarning):
        _, first = build_cache([corpus], SAMPLE_RATE, cache_root=root, progress=False)
    with pytest.warns(UserWarning):  # skipped files are still reported on reuse
        _, again = build_cache([corpus], SAMPLE_RATE, cache_root=root, progress=False)
    assert again.reused and again.folder == first.folder and len(again.skipped) == 2
    _sine(corpus / "a.wav", 220, 5.0)
    with pytest.warns(UserWarning):
        cache, changed = build_cache([corpus], SAMPLE_RATE, cache_root=root, progress=False)
    assert not changed.reused and changed.folder != first.folder
    assert cache.track(cache.relpaths.index("a.wav")).size == 5 * SAMPLE_RATE


def test_manifest_lists_paths_relative_to_itself(corpus, tmp_path):
    manifest = corpus / "list.csv"
    manifest.write_text("path,split\na.wav,train\n# comment\nsub/b.wav,train\n")
    assert read_manifest(manifest) == [corpus / "a.wav", corpus / "sub" / "b.wav"]
    files = resolve_inputs([manifest])
    assert [f.name for f in files] == ["a.wav", "b.wav"]
    cache, summary = build_cache([manifest], SAMPLE_RATE, cache_root=tmp_path / "c", progress=False)
    assert summary.tracks == 2 and summary.skipped == ()


def test_probe_sets_are_refused_unless_allowed(tmp_path):
    _sine(tmp_path / "gtzan_subset" / "blues.00000.wav", 220, 3.0)
    with pytest.raises(ConfigError, match="probe set 'gtzan_subset'.*leak"):
        build_cache([tmp_path / "gtzan_subset"], SAMPLE_RATE, cache_root=tmp_path / "c")
    _, summary = build_cache(
        [tmp_path], SAMPLE_RATE, cache_root=tmp_path / "c", allow_probe_sets=True, progress=False
    )
    assert summary.tracks == 1


def test_no_usable_audio_is_a_data_error(tmp_path):
    _sine(tmp_path / "tiny.wav", 220, 0.5)
    with pytest.warns(UserWarning), pytest.raises(DataError, match="no usable audio"):
        build_cache([tmp_path], SAMPLE_RATE, cache_root=tmp_path / "c", progress=False)
    with pytest.raises(DataError, match="no audio files"):
        build_cache([tmp_path / "c"], SAMPLE_RATE, cache_root=tmp_path / "c2")

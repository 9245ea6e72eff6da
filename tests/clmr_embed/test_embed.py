"""The Python API (Embedder): arrays and files, the store's windows and mean bit for bit, tags."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from clmr_embed.embed import Embedder
from clmr_embed.errors import ModelArtifactError
from clmr_embed.extract import ExtractConfig, run_extract
from clmr_embed.store import open_store
from tests.fixtures.audio import sine, write_audio, write_sine
from tests.fixtures.models import TinySpec, build_tiny_model


def test_api_mean_equals_the_store_mean_bit_for_bit(tmp_path: Path, tiny_tagger: Path) -> None:
    (tmp_path / "lib").mkdir()
    song = write_sine(tmp_path / "lib" / "song.flac", 330, 37.0, 44100, channels=2)
    # noise makes the window embeddings differ, so a float32 mean would round differently
    noisy = np.random.default_rng(3).standard_normal(37 * 8000).astype(np.float32) * 0.3
    write_audio(tmp_path / "lib" / "noise.wav", noisy, 8000)
    store_path = tmp_path / "out.h5"
    config = ExtractConfig(inputs=(tmp_path / "lib",), output=store_path, model=str(tiny_tagger))
    assert run_extract(config).exit_code == 0
    embedder = Embedder(tiny_tagger)
    with open_store(store_path) as store:
        for path in (song, tmp_path / "lib" / "noise.wav"):
            track = embedder.embed_file(path)
            np.testing.assert_array_equal(track.embeddings, store.embeddings(path.name))
            np.testing.assert_array_equal(track.starts_s, store.starts_s(path.name))
            assert track.mean.dtype == np.float32
            np.testing.assert_array_equal(track.mean, store.mean(path.name))


def test_embed_file_equals_embed_of_the_decoded_samples(tmp_path: Path, tiny_tagger: Path) -> None:
    from clmr_embed.audio import load_audio

    song = write_sine(tmp_path / "song.mp3", 220, 12.0, 22050)
    embedder = Embedder(tiny_tagger)
    from_file = embedder.embed_file(song, hop_seconds=0.1)
    samples, _ = load_audio(song, 8000)
    in_memory = embedder.embed(samples, 8000, hop_seconds=0.1)
    np.testing.assert_allclose(from_file.embeddings, in_memory.embeddings, atol=1e-6)
    np.testing.assert_array_equal(from_file.starts_s, in_memory.starts_s)
    assert from_file.logits is not None and from_file.logits.shape == (len(from_file.starts_s), 3)
    assert (from_file.padded, from_file.silent) == (False, False)


def test_tag_file_keeps_windows_only_when_asked(tmp_path: Path, tiny_tagger: Path) -> None:
    song = write_sine(tmp_path / "song.wav", 440, 20.0, 8000)
    embedder = Embedder(tiny_tagger)
    kept = embedder.tag_file(song, top_k=2)
    lean = embedder.tag_file(song, top_k=2, segments=False)
    assert lean.window_probs is None and lean.starts_s is None
    assert kept.window_probs is not None and kept.window_probs.shape == (kept.n_windows, 3)
    assert lean.n_windows == kept.n_windows == int(20.0 * 8000 // 2187)
    np.testing.assert_allclose(lean.scores, kept.window_probs.mean(axis=0), atol=1e-6)
    assert [t.label for t in lean.tags] == [t.label for t in kept.tags] and len(lean.tags) == 2


def test_silent_and_short_audio_are_flagged(tmp_path: Path, tiny_tagger: Path) -> None:
    embedder = Embedder(tiny_tagger)
    silent = embedder.tag(np.zeros(8000 * 2, np.float32), 8000)
    assert silent.flags == ("silent",)
    short = write_sine(tmp_path / "short.wav", 440, 0.05, 8000)
    assert embedder.tag_file(short).flags == ("short",)


def test_tag_scores_are_mean_window_sigmoids(tmp_path: Path, tiny_tagger: Path) -> None:
    audio = sine(330, 3.0, 8000)[:, 0]
    embedder = Embedder(tiny_tagger)
    result = embedder.tag(audio, 8000, top_k=3)
    windows = audio[: (len(audio) // 2187) * 2187].reshape(-1, 2187)
    _, logits = embedder.model.run(windows)
    assert logits is not None
    expected = (1 / (1 + np.exp(-logits))).mean(axis=0)
    np.testing.assert_allclose(result.scores, expected, atol=1e-6)
    assert result.tags[0].score == pytest.approx(expected.max(), abs=1e-6)


def test_softmax_for_single_label_models(tmp_path: Path) -> None:
    spec = TinySpec(task="multiclass", labels=("a", "b", "c", "d"), name="tiny-softmax")
    model = build_tiny_model(tmp_path / "softmax.onnx", spec)
    result = Embedder(model).tag(sine(440, 1.0, 8000)[:, 0], 8000)
    assert result.window_probs is not None
    np.testing.assert_allclose(result.window_probs.sum(axis=1), 1.0, atol=1e-5)
    assert result.scores.sum() == pytest.approx(1.0, abs=1e-5)


def test_encoder_cannot_tag(tmp_path: Path, tiny_encoder: Path) -> None:
    with pytest.raises(ModelArtifactError, match="not a tagger"):
        Embedder(tiny_encoder).tag(sine(440, 1.0, 8000)[:, 0], 8000)


def test_embedder_short_audio_is_padded(tiny_encoder: Path) -> None:
    track = Embedder(tiny_encoder).embed(np.ones(100, np.float32) * 0.1, 8000)
    assert track.padded and track.embeddings.shape == (1, 16)


def test_embedder_resamples_and_downmixes(tiny_encoder: Path) -> None:
    stereo = sine(200, 2.0, 16000, channels=2)
    embedder = Embedder(tiny_encoder)
    a = embedder.embed(stereo, 16000)
    b = embedder.embed(stereo[:, 0], 16000)
    np.testing.assert_allclose(a.embeddings, b.embeddings, atol=1e-5)
    assert a.embeddings.shape[0] == int(2.0 * 8000 // 2187)


BUNDLED = Path(__file__).resolve().parents[2] / "clmr_embed" / "models" / "clmr-free.onnx"


def test_default_precision_is_onnxruntime_fp32_bit_for_bit() -> None:
    from clmr_embed.model import OnnxModel, SessionConfig
    from tools.golden import RATE, golden_signal

    signal = np.concatenate([golden_signal(), golden_signal()[::-1]])  # two windows
    before = OnnxModel(BUNDLED, SessionConfig("cpu", 1))  # how Embedder ran before engines
    want, _ = before.run(np.stack([signal[:59049], signal[59049:]]))
    embedder = Embedder(BUNDLED, device="cpu", threads=1)
    assert (embedder.model.engine, embedder.model.precision) == ("onnxruntime", "fp32")
    np.testing.assert_array_equal(embedder.embed(signal, RATE).embeddings, want)


def test_bf16_runs_on_openvino_close_to_fp32(tiny_tagger: Path, private_cache: Path) -> None:
    pytest.importorskip("openvino")
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, 3 * 2187).astype(np.float32)
    fp32 = Embedder(tiny_tagger).embed(audio, 8000).embeddings
    embedder = Embedder(tiny_tagger, precision="bf16")
    assert embedder.model.engine == "openvino" and embedder.model.precision in ("bf16", "fp32")
    np.testing.assert_allclose(embedder.embed(audio, 8000).embeddings, fp32, atol=0.05)
    assert (private_cache / "precision-checks.json").is_file()  # checked on first use


def test_impossible_choices_are_refused(tmp_path: Path, tiny_tagger: Path) -> None:
    from clmr_embed.errors import ConfigError

    with pytest.raises(ConfigError, match="runs on openvino, not on engine 'onnxruntime'"):
        Embedder(tiny_tagger, precision="bf16", engine="onnxruntime")
    copy = tmp_path / "tiny.onnx"
    copy.write_bytes(tiny_tagger.read_bytes())
    with pytest.raises(ModelArtifactError, match=r"no int8 file tiny.int8.onnx.*tools.precision"):
        Embedder(copy, precision="int8", engine="onnxruntime")

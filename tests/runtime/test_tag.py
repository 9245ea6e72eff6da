"""`clmr-embed tag` and the in-memory Embedder API with tiny models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from clmr_embed.cli import app
from clmr_embed.embed import Embedder
from clmr_embed.errors import ModelArtifactError
from clmr_embed.tagging import best_tags, probabilities, track_scores
from tests.fixtures.audio import sine, write_sine
from tests.fixtures.models import TinySpec, build_tiny_model

runner = CliRunner()


def test_tag_json_schema(tmp_path: Path, tiny_tagger: Path) -> None:
    song = write_sine(tmp_path / "song.flac", 440, 2.0, 44100, channels=2)
    result = runner.invoke(app, ["tag", str(song), "--model", str(tiny_tagger), "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout.strip())
    assert record["path"] == str(song) and record["model"] == "tiny"
    assert len(record["model_sha256"]) == 64 and record["task"] == "multilabel"
    assert [t["label"] for t in record["tags"]] and len(record["tags"]) == 3
    scores = [t["score"] for t in record["tags"]]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    assert record["n_windows"] == int(2.0 * 8000 // 2187)


def test_tag_scores_are_mean_window_sigmoids(tmp_path: Path, tiny_tagger: Path) -> None:
    audio = sine(330, 3.0, 8000)[:, 0]
    embedder = Embedder(tiny_tagger)
    result = embedder.tag(audio, 8000, top_k=3)
    windows = audio[: (len(audio) // 2187) * 2187].reshape(-1, 2187)
    _, logits = embedder.model.run(windows)
    expected = (1 / (1 + np.exp(-logits))).mean(axis=0)
    np.testing.assert_allclose(result.scores, expected, atol=1e-6)
    assert result.tags[0].score == pytest.approx(expected.max(), abs=1e-6)


def test_segments_give_a_taggram(tmp_path: Path, tiny_tagger: Path) -> None:
    song = write_sine(tmp_path / "song.wav", 440, 2.0, 8000)
    result = runner.invoke(
        app, ["tag", str(song), "--model", str(tiny_tagger), "--json", "--segments"]
    )
    record = json.loads(result.stdout.strip())
    segments = record["segments"]
    assert len(segments) == record["n_windows"]
    assert segments[1]["start_s"] == pytest.approx(2187 / 8000, abs=1e-3)
    assert set(segments[0]["scores"]) == {"low", "mid", "high"}


def test_softmax_for_single_label_models(tmp_path: Path) -> None:
    spec = TinySpec(task="multiclass", labels=("a", "b", "c", "d"), name="tiny-softmax")
    model = build_tiny_model(tmp_path / "softmax.onnx", spec)
    result = Embedder(model).tag(sine(440, 1.0, 8000)[:, 0], 8000)
    np.testing.assert_allclose(result.window_probs.sum(axis=1), 1.0, atol=1e-5)
    assert result.scores.sum() == pytest.approx(1.0, abs=1e-5)


def test_folder_with_a_bad_file_exits_1(tmp_path: Path, tiny_tagger: Path) -> None:
    write_sine(tmp_path / "good.wav", 440, 1.0, 8000)
    (tmp_path / "bad.mp3").write_bytes(b"nope" * 100)
    result = runner.invoke(app, ["tag", str(tmp_path), "--model", str(tiny_tagger), "--json"])
    assert result.exit_code == 1
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [Path(r["path"]).name for r in lines] == ["good.wav"]


def test_table_output_on_terminal(tmp_path: Path, tiny_tagger: Path) -> None:
    song = write_sine(tmp_path / "song.wav", 440, 1.0, 8000)
    result = runner.invoke(app, ["tag", str(song), "--model", str(tiny_tagger)])
    assert result.exit_code == 0
    assert "low" in result.stdout and "score" in result.stdout


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


def test_tagging_helpers() -> None:
    logits = np.array([[0.0, 2.0], [0.0, -2.0]], np.float32)
    probs = probabilities(logits, "multilabel")
    np.testing.assert_allclose(probs[0], [0.5, 1 / (1 + np.exp(-2))], atol=1e-6)
    scores = track_scores(probs)
    np.testing.assert_allclose(scores, [0.5, 0.5], atol=1e-6)
    best = best_tags(np.array([0.1, 0.9, 0.5], np.float32), ("a", "b", "c"), 2)
    assert [t.label for t in best] == ["b", "c"]

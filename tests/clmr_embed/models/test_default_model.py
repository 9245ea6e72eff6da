"""The bundled default model clmr-free: metadata, golden embedding, real tags, offline default."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from clmr_embed.cli import app
from clmr_embed.constants import MTAT_TAGS, SAMPLE_RATE, WINDOW_SAMPLES
from clmr_embed.digest import file_sha256
from clmr_embed.model import OnnxModel
from clmr_embed.registry import DEFAULT_MODEL, MODELS, bundled_path
from clmr_embed.resolution import resolve_model
from tools.golden import GOLDEN_FILE, golden_embedding

ROOT = Path(__file__).resolve().parents[3]
MODEL = bundled_path(MODELS[DEFAULT_MODEL])


def test_the_default_is_the_bundled_trained_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLMR_EMBED_MODEL", raising=False)
    assert DEFAULT_MODEL == "clmr-free" and MODELS[DEFAULT_MODEL].trained
    assert resolve_model(None) == MODEL and MODEL.is_file()
    assert MODEL.stat().st_size < 12_000_000  # fp32, under the package budget


def test_metadata_is_complete() -> None:
    info = OnnxModel(MODEL).info
    assert (info.kind, info.name, info.trained, info.task) == (
        "tagger",
        "clmr-free",
        True,
        "multilabel",
    )
    assert (info.sample_rate, info.window_samples, info.embedding_dim) == (
        SAMPLE_RATE,
        WINDOW_SAMPLES,
        512,
    )
    assert info.labels == MTAT_TAGS
    for part in ("MIT", "GPL-2+", "CC BY-SA", "CC0", "musicnn", "ISC", "MagnaTagATune", "NC-SA"):
        assert part in info.licence, part
    assert "steps" in info.description and "docs/models.md" in info.description
    # The source hash names the committed weights-only checkpoint it was exported from.
    assert info.source_sha256 == file_sha256(ROOT / "checkpoints" / "clmr-free.pt")


def test_golden_embedding() -> None:
    golden = json.loads(GOLDEN_FILE.read_text())
    assert golden["model_sha256"] == file_sha256(MODEL), (
        "the bundled model changed; if on purpose, run `python -m tools.golden`"
    )
    expected = np.asarray(golden["embedding"], dtype=np.float32)
    got = golden_embedding(MODEL)
    assert got.shape == (512,) and np.abs(expected).max() > 1e-3  # not a vector of zeros
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)


def test_tag_a_real_song(shared_dir: Path) -> None:
    song = shared_dir / "audio" / "clmr_demo" / "queen_love_of_my_life.mp3"
    result = CliRunner().invoke(app, ["tag", str(song), "--top-k", "50", "--json"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)
    assert (row["model"], row["trained"], row["n_windows"]) == ("clmr-free", True, 82)
    labels = [t["label"] for t in row["tags"]]
    scores = np.array([t["score"] for t in row["tags"]])
    assert sorted(labels) == sorted(MTAT_TAGS)
    assert ((scores >= 0) & (scores <= 1)).all()
    assert (np.diff(scores) <= 0).all() and scores[0] > scores[-1]  # ranked, not constant
    assert "UNTRAINED" not in result.stderr

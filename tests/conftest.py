"""Shared fixtures: tiny ONNX models built once per session, the shared data folder."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared beside the checkout (real audio and weights); tests skip without it."""
    if not SHARED.is_dir():
        pytest.skip("../shared is not available")
    return SHARED


@pytest.fixture()
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """$CLMR_EMBED_CACHE in the test's tmp folder, so no engine check result leaks between
    tests (the first use of a low-precision path writes its check there)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("CLMR_EMBED_CACHE", str(cache))
    return cache


@pytest.fixture(scope="session")
def tiny_tagger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny multi-label tagger ONNX (8 kHz, 2187-sample windows, 16-d, 3 labels)."""
    from tests.fixtures.models import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-tagger.onnx")


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny encoder-only ONNX with the same weights as `tiny_tagger`."""
    from tests.fixtures.models import TinySpec, build_tiny_model

    path = tmp_path_factory.mktemp("models") / "tiny-encoder.onnx"
    return build_tiny_model(path, TinySpec(kind="encoder", name="tiny-encoder"))

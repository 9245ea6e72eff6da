"""Engine fixtures: a private cache folder per test (first-use checks write there)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """$CLMR_EMBED_CACHE in the test's tmp folder, so no check result leaks between tests."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("CLMR_EMBED_CACHE", str(cache))
    return cache


@pytest.fixture()
def tiny_copy(tmp_path: Path, tiny_tagger: Path) -> Path:
    """The tiny tagger copied into the test's folder (tests add int8 files beside it)."""
    target = tmp_path / "model" / "tiny.onnx"
    target.parent.mkdir()
    target.write_bytes(tiny_tagger.read_bytes())
    return target

"""Engine fixtures: a private cache folder per test (first-use checks write there)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _private_cache(private_cache: Path) -> Path:
    """Every engine test gets its own check cache (tests/conftest.py's private_cache)."""
    return private_cache


@pytest.fixture()
def tiny_copy(tmp_path: Path, tiny_tagger: Path) -> Path:
    """The tiny tagger copied into the test's folder (tests add int8 files beside it)."""
    target = tmp_path / "model" / "tiny.onnx"
    target.parent.mkdir()
    target.write_bytes(tiny_tagger.read_bytes())
    return target

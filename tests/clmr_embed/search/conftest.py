"""Fixtures of the search tests: the demo-song store and a tiny store."""

from __future__ import annotations

from pathlib import Path

import pytest

from clmr_embed.store import copy_store
from tests.clmr_embed.search.stores import demo_store, extract, tiny_library


@pytest.fixture(scope="session")
def demo_h5(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store of the six demo songs (bundled model); tests must not change it."""
    return demo_store(shared_dir, tmp_path_factory.getbasetemp() / "demo-store")


@pytest.fixture(scope="session")
def tiny_lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight tones (wav, 8 kHz); tests must not change them."""
    return tiny_library(tmp_path_factory.mktemp("tiny") / "lib")


@pytest.fixture(scope="session")
def tiny_source(tiny_lib: Path, tiny_tagger: Path) -> Path:
    """The tones embedded once with the tiny tagger."""
    return extract(tiny_lib, tiny_lib.parent / "tiny.h5", tiny_tagger)


@pytest.fixture()
def tiny_h5(tiny_source: Path, tmp_path: Path) -> Path:
    """A fresh copy of the tiny store that a test may change."""
    return copy_store(tiny_source, tmp_path / "tiny.h5")

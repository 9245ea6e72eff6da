"""Fixtures of the web-app tests: the stores of the search tests, an app over the tiny one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clmr_embed.search.conftest import demo_h5, tiny_h5, tiny_lib, tiny_source
from tests.clmr_embed.search.stores import require

__all__ = ["demo_h5", "tiny_h5", "tiny_lib", "tiny_source"]


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Heads cut from taggers go to a test cache, not the user's."""
    monkeypatch.setenv("CLMR_EMBED_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture()
def client(tiny_h5: Path, tiny_lib: Path, tiny_tagger: Path) -> Iterator:
    """A test client of the app over a fresh tiny store, audio from the tones' folder."""
    require("starlette")
    from starlette.testclient import TestClient

    from clmr_embed.serve import ServeConfig, create_app

    config = ServeConfig(
        store=tiny_h5, roots=(tiny_lib,), model=tiny_tagger, max_upload_bytes=2**20
    )
    with TestClient(create_app(config), base_url="http://127.0.0.1:8000") as test_client:
        yield test_client

"""clmr-embed serve: --root is optional (the store's recorded roots), bad roots are usage errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from clmr_embed.cli import app
from tests.clmr_embed.search.stores import forget_roots, record_roots, require

require("starlette")
import uvicorn
from starlette.testclient import TestClient

runner = CliRunner()


@pytest.fixture()
def served(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The apps `serve` would run (uvicorn.run records them instead of listening)."""
    apps: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda application, **kwargs: apps.append(application))
    return apps


def _audio_status(application: Any) -> int:
    with TestClient(application, base_url="http://127.0.0.1:8000") as client:
        track = client.get("/api/library").json()["tracks"][0]
        return client.get(f"/audio/{track['id']}").status_code


def test_without_root_the_recorded_roots_play_audio(
    tiny_h5: Path, tiny_lib: Path, tiny_tagger: Path, served: list[Any]
) -> None:
    record_roots(tiny_h5, tiny_lib)
    result = runner.invoke(app, ["serve", str(tiny_h5), "--model", str(tiny_tagger)])
    assert result.exit_code == 0, result.output
    assert "warning" not in result.stderr
    assert _audio_status(served[0]) == 200


def test_a_store_without_roots_warns_and_root_supplies_them(
    tiny_h5: Path, tiny_lib: Path, tiny_tagger: Path, served: list[Any]
) -> None:
    forget_roots(tiny_h5)
    result = runner.invoke(app, ["serve", str(tiny_h5), "--model", str(tiny_tagger)])
    assert result.exit_code == 0 and "--root" in result.stderr
    assert _audio_status(served[0]) == 404
    args = ["serve", str(tiny_h5), "--model", str(tiny_tagger), "--root", str(tiny_lib)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0 and "warning" not in result.stderr
    assert _audio_status(served[1]) == 200


def test_a_root_that_is_not_a_folder_is_a_usage_error(tiny_h5: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["serve", str(tiny_h5), "--root", str(tmp_path / "missing")])
    assert result.exit_code == 2

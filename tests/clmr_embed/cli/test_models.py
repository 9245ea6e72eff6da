"""`clmr-embed models`: JSON lines with the default first, a table on a terminal."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from clmr_embed.cli import app


def test_models_lists_it_first() -> None:
    result = CliRunner().invoke(app, ["models", "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows[0]["name"] == "clmr-free" and rows[0]["default"] and rows[0]["available"]
    assert rows[0]["trained"] and rows[0]["source"] == "bundled"


def test_the_environment_picks_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLMR_EMBED_MODEL", "clmr-mtat")
    result = CliRunner().invoke(app, ["models", "--json"])
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["name"] for r in rows] == ["clmr-mtat", "clmr-free"] and rows[0]["default"]


def test_table_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLMR_EMBED_MODEL", raising=False)
    result = CliRunner().invoke(app, ["models"])
    assert result.exit_code == 0 and not result.stdout.lstrip().startswith("{")
    first = result.stdout.split("clmr-mtat")[0]  # the rows wrap; the default's comes first
    assert "clmr-free" in first and "(default)" in first and "bundled" in first

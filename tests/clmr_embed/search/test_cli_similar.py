"""`clmr-embed similar`: JSON on stdout, a table, usage errors exit 2, bad queries exit 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from clmr_embed import search
from clmr_embed.cli import app

runner = CliRunner()


def test_json_lists_the_nearest_tracks(demo_h5: Path) -> None:
    args = ["similar", str(demo_h5), "john_lennon_imagine.mp3", "--top-k", "3", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["source"] == "store" and record["level"] == "tracks"
    assert [n["relpath"] for n in record["neighbours"]][0] == "john_lennon_imagine_22050.mp3"
    assert len(record["neighbours"]) == 3


def test_windows_table_shows_start_times(demo_h5: Path) -> None:
    args = ["similar", str(demo_h5), "queen_love_of_my_life.mp3", "--windows", "--top-k", "4"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "start s" in result.stdout and "queen_love_of_my_life_22050.mp3" in result.stdout


def test_bad_values_exit_2_and_unknown_queries_exit_1(tiny_h5: Path) -> None:
    bad = runner.invoke(app, ["similar", str(tiny_h5), "tone_01.wav", "--top-k", "0"])
    assert bad.exit_code == 2
    missing = runner.invoke(app, ["similar", str(tiny_h5), "no_such.wav"])
    assert missing.exit_code == 1
    assert missing.stdout == "" and "error:" in missing.stderr
    assert "no_such.wav" in missing.stderr


def test_the_cli_prints_what_the_python_api_returns(
    tiny_h5: Path, tiny_lib: Path, tiny_tagger: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple] = []
    api = search.similar

    def spy(*args: object, **kwargs: object) -> search.SimilarResult:
        calls.append(args)
        return api(*args, **kwargs)  # type: ignore[arg-type]

    file = str(tiny_lib / "tone_06.wav")
    for query, extra in (("tone_02.wav", []), ("tone_02.wav", ["--windows"]), (file, [])):
        with monkeypatch.context() as patched:
            patched.setattr(search, "similar", spy)
            args = ["similar", str(tiny_h5), query, "--top-k", "4", "--json", *extra]
            args += ["--model", str(tiny_tagger)]
            result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        expected = api(tiny_h5, query, 4, bool(extra), tiny_tagger).to_dict()
        assert json.loads(result.stdout) == expected
    assert len(calls) == 3  # every CLI query went through clmr_embed.search.similar

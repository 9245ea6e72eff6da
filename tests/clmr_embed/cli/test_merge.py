"""`clmr-embed merge`: two shards of a library equal one store of it; other models are refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from clmr_embed.cli import app
from clmr_embed.store import check_store, open_store
from tests.fixtures.audio import write_library

runner = CliRunner()


def _extract(lib: Path, out: Path, model: Path, *options: str) -> None:
    args = ["extract", str(lib), str(out), "--model", str(model), "--workers", "0", *options]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output


def _tracks(path: Path) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
    with open_store(path) as store:
        return {p: (store.flags(p), store.embeddings(p)) for p in store.paths}


def test_two_shards_of_a_library_merge_into_the_store_of_the_whole(
    tmp_path: Path, tiny_tagger: Path
) -> None:
    lib = write_library(tmp_path / "lib")
    a, b, whole = tmp_path / "a.h5", tmp_path / "b.h5", tmp_path / "whole.h5"
    _extract(lib, a, tiny_tagger, "--include", "Sub/*")
    _extract(lib, b, tiny_tagger, "--exclude", "Sub/*")
    _extract(lib, whole, tiny_tagger)
    out = tmp_path / "out.h5"
    result = runner.invoke(app, ["merge", str(a), str(b), str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.splitlines()[-1])
    assert (report["merged"], report["unchanged"], report["shards"]) == (5, 0, [str(a), str(b)])
    assert "done: 5 merged" in result.stderr
    want, got = _tracks(whole), _tracks(out)
    assert got.keys() == want.keys()
    for path, (flags, embeddings) in want.items():
        assert got[path][0] == flags
        np.testing.assert_allclose(got[path][1], embeddings, atol=1e-5)
    assert not check_store(out).damaged
    rerun = runner.invoke(app, ["merge", str(a), str(b), str(out), "--json"])
    assert json.loads(rerun.stdout.splitlines()[-1])["unchanged"] == 5


def test_a_merge_of_stores_of_different_models_is_refused_in_one_line(
    tmp_path: Path, tiny_tagger: Path, tiny_encoder: Path
) -> None:
    lib = write_library(tmp_path / "lib")
    a, b, out = tmp_path / "a.h5", tmp_path / "b.h5", tmp_path / "out.h5"
    _extract(lib, a, tiny_tagger, "--include", "Sub/*")
    _extract(lib, b, tiny_encoder, "--exclude", "Sub/*")
    result = runner.invoke(app, ["merge", str(a), str(b), str(out)])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "b.h5 was made with model" in lines[0]
    assert "merge only stores of one model" in lines[0]
    assert not out.exists()


def test_bad_arguments_are_usage_errors(tmp_path: Path) -> None:
    assert runner.invoke(app, ["merge", str(tmp_path / "a.h5")]).exit_code == 2
    result = runner.invoke(app, ["merge", str(tmp_path / "a.h5"), str(tmp_path / "out.txt")])
    assert result.exit_code == 2 and "output .h5 store" in result.output

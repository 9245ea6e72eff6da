"""`clmr-embed check`: exit 1 listing damaged tracks; `extract` repairs them from their audio."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from clmr_embed.cli import app
from clmr_embed.extract.plan import track_id_for
from clmr_embed.store import open_store
from tests.fixtures.audio import write_library
from tests.fixtures.store import damage_track

runner = CliRunner()


def _extract(lib: Path, out: Path, model: Path) -> tuple[int, dict, str]:
    """(exit code, the --json summary, stderr) of an extract run."""
    result = runner.invoke(
        app, ["extract", str(lib), str(out), "--model", str(model), "--json", "--workers", "0"]
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    summary = json.loads(lines[-1]) if lines else {"output": result.output}
    return result.exit_code, summary, result.stderr


def test_damage_is_listed_then_repaired_by_extract(tmp_path: Path, tiny_tagger: Path) -> None:
    lib = write_library(tmp_path / "lib")
    out = tmp_path / "out.h5"
    assert _extract(lib, out, tiny_tagger)[0] == 0
    with open_store(out) as store:
        before = store.embeddings("Sub/b_8k.FLAC")
    result = runner.invoke(app, ["check", str(out)])
    assert result.exit_code == 0 and "5 tracks checked" in result.stdout
    assert "all intact" in result.stdout

    damage_track(out, track_id_for("Sub/b_8k.FLAC"))  # an unchanged file's embeddings
    result = runner.invoke(app, ["check", str(out), "--json"])
    report = json.loads(result.stdout)
    assert result.exit_code == 1 and report["exit_code"] == 1
    assert [t["relpath"] for t in report["damaged"]] == ["Sub/b_8k.FLAC"]
    result = runner.invoke(app, ["check", str(out)])
    assert result.exit_code == 1 and "damaged Sub/b_8k.FLAC" in result.stdout

    code, summary, stderr = _extract(lib, out, tiny_tagger)  # the rerun notices and re-embeds it
    assert code == 0, summary
    (warning,) = [line for line in stderr.splitlines() if line.startswith("warning:")]
    assert "1 damaged tracks, e.g. Sub/b_8k.FLAC" in warning and ".py:" not in stderr
    assert summary["damaged"] == ["Sub/b_8k.FLAC"] and summary["repaired"] == 1
    assert summary["embedded"] == 1 and summary["unchanged"] == 4
    with open_store(out) as store:
        np.testing.assert_array_equal(store.embeddings("Sub/b_8k.FLAC"), before)
    assert runner.invoke(app, ["check", str(out)]).exit_code == 0
    code, again, _ = _extract(lib, out, tiny_tagger)
    assert code == 0 and again["damaged"] == [] and again["repaired"] == 0


def test_compact_and_bad_stores(tmp_path: Path, tiny_tagger: Path) -> None:
    lib = write_library(tmp_path / "lib")
    out = tmp_path / "out.h5"
    _extract(lib, out, tiny_tagger)
    (lib / "new.wav").write_bytes((lib / "a_stereo.wav").read_bytes()[:-4000])
    _extract(lib, out, tiny_tagger)
    result = runner.invoke(app, ["check", str(out), "--compact", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.splitlines()[-1])["segments"] == 1
    result = runner.invoke(app, ["check", str(tmp_path / "nope.h5")])
    assert result.exit_code == 1 and "does not exist" in result.output
    assert "Traceback" not in result.output

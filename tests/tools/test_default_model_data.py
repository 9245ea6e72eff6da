"""tools.default_model_data: a corpus cut short is downloaded again, a finished one is kept."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tools.default_model_data import ensure_corpus


def _script(tmp_path: Path, exit_code: int) -> Path:
    """A stand-in for free-music.sh: writes its manifest first, like the real one, then exits."""
    script = tmp_path / f"fake-{exit_code}.sh"
    script.write_text(
        'echo "path,package,version,bytes" > "$1/manifest.csv"\n'
        'echo run >> "$1/runs"\n'
        f"exit {exit_code}\n"
    )
    return script


def test_a_partial_download_is_redone_and_a_finished_one_kept(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    with pytest.raises(subprocess.CalledProcessError):
        ensure_corpus(corpus, _script(tmp_path, 1))
    assert (corpus / "manifest.csv").is_file()  # what a killed download leaves
    ensure_corpus(corpus, _script(tmp_path, 0))  # not taken as done: run again
    ensure_corpus(corpus, _script(tmp_path, 0))  # finished: kept
    assert (corpus / "runs").read_text().split() == ["run", "run"]

"""Bad option values are usage errors (exit 2, typer's message) caught before any model loads."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from clmr_embed.audio import DECODERS
from clmr_embed.choices import Decoder, Device, EngineName, Precision
from clmr_embed.cli import app
from clmr_embed.cli.options import MAX_WORKERS
from clmr_embed.engines import ENGINES, PRECISIONS
from clmr_embed.model import DEVICES

runner = CliRunner()

EXTRACT_BAD = [
    ["--device", "tpu"],
    ["--decoder", "bogus"],
    ["--backend", "bogus"],
    ["--hop-seconds", "-1"],
    ["--hop-seconds", "0"],
    ["--hop-seconds", "inf"],
    ["--hop-seconds", "nan"],
    ["--hop-seconds", "1e12"],
    ["--threads", "-3"],
    ["--batch-size", "0"],
    ["--workers", "-1"],
    ["--workers", str(MAX_WORKERS + 1)],
    ["--workers", "many"],
    ["--commit-every", "0"],
]
TAG_BAD = [
    ["--device", "tpu"],
    ["--hop-seconds", "nan"],
    ["--top-k", "0"],
    ["--threads", "-1"],
]


def _invoke(command: str, tmp_path: Path, bad: list[str]) -> tuple[int, str]:
    """Run `command` on a missing input with a missing model file: loading it would exit 1."""
    model = ["--model", str(tmp_path / "missing.onnx")]
    paths = ["x", str(tmp_path / "out.h5")] if command == "extract" else ["x"]
    result = runner.invoke(app, [command, *paths, *model, *bad])
    return result.exit_code, result.output


@pytest.mark.parametrize("bad", EXTRACT_BAD, ids=" ".join)
def test_extract_bad_value_is_a_usage_error(tmp_path: Path, bad: list[str]) -> None:
    code, output = _invoke("extract", tmp_path, bad)
    assert code == 2, output
    assert "Invalid value" in output and bad[0] in output and "Traceback" not in output


@pytest.mark.parametrize("bad", TAG_BAD, ids=" ".join)
def test_tag_bad_value_is_a_usage_error(tmp_path: Path, bad: list[str]) -> None:
    code, output = _invoke("tag", tmp_path, bad)
    assert code == 2, output
    assert "Invalid value" in output and bad[0] in output


@pytest.mark.parametrize("command", ["extract", "tag"])
def test_good_values_reach_the_model_and_fail_there(tmp_path: Path, command: str) -> None:
    # The control for the tests above: the same command line with valid values gets as far as
    # the missing model file, so exit 2 there was decided before any model was looked at.
    code, output = _invoke(command, tmp_path, ["--device", "cpu", "--hop-seconds", "1.5"])
    assert code == 1 and "missing.onnx" in output


def test_no_model_is_opened_for_a_bad_value(
    tmp_path: Path, tiny_tagger: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[Path] = []
    import clmr_embed.model

    real_init = clmr_embed.model.OnnxModel.__init__

    def spy(self: clmr_embed.model.OnnxModel, path: Path, *args: object) -> None:
        opened.append(path)
        real_init(self, path, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(clmr_embed.model.OnnxModel, "__init__", spy)
    song = tmp_path / "song.wav"
    song.write_bytes(b"")
    result = runner.invoke(app, ["tag", str(song), "--model", str(tiny_tagger), "--top-k", "0"])
    assert result.exit_code == 2 and opened == []
    result = runner.invoke(app, ["tag", str(song), "--model", str(tiny_tagger)])
    assert result.exit_code == 1 and opened == [tiny_tagger]  # the spy does see a model load


def test_workers_cap_names_the_cap(tmp_path: Path) -> None:
    code, output = _invoke("extract", tmp_path, ["--workers", str(MAX_WORKERS + 1)])
    assert code == 2 and f"at most {MAX_WORKERS}" in output


def test_workers_say_what_they_take(tmp_path: Path) -> None:
    code, output = _invoke("extract", tmp_path, ["--workers", "2.5"])
    assert code == 2 and "a number of processes or 'auto'" in output
    code, output = _invoke("extract", tmp_path, ["--workers", "auto"])
    assert code == 1 and "missing.onnx" in output  # accepted: the run went on to the model


def test_cli_choices_are_the_library_choices() -> None:
    assert tuple(Device) == DEVICES
    assert tuple(Decoder) == DECODERS
    assert tuple(Precision) == PRECISIONS
    assert tuple(EngineName) == ENGINES


def test_hidden_backend_alias_is_not_in_help() -> None:
    result = runner.invoke(app, ["extract", "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert "--decoder" in result.output and "--backend" not in result.output

"""clmr-embed filters: bad layer lists are usage errors; the bundled model's image is written."""

import pytest
from typer.testing import CliRunner

from clmr_embed.cli import app

runner = CliRunner()


@pytest.mark.parametrize("layers", ["0", "12", "1,x", ""])
def test_bad_layers_exit_2_before_loading(layers, tmp_path):
    result = runner.invoke(app, ["filters", str(tmp_path / "missing.onnx"), "--layers", layers])
    assert result.exit_code == 2, result.output


def test_bundled_model_layers_image(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    out = tmp_path / "filters.png"
    result = runner.invoke(
        app, ["filters", "clmr-free", "--layers", "1,2", "--steps", "3", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:4] == b"\x89PNG" and str(out) in result.stdout


def test_a_missing_model_file_is_one_error_line(tmp_path):
    pytest.importorskip("torch")
    result = runner.invoke(app, ["filters", str(tmp_path / "missing.pt"), "--layers", "1"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)  # no traceback
    assert "missing.pt" in result.stderr and "does not exist" in result.stderr

"""`train experiment`: a tiny grid end to end, resume after a failed cell, bad specs refused."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

torch = pytest.importorskip("torch")

from clmr_embed.cli import app
from clmr_embed.errors import ConfigError
from training.experiment.cells import RUNNERS, CellKind, CellScores
from training.experiment.grid import GridOptions, cell_dir, kind_rules, run_grid
from training.experiment.report import CellRow
from training.experiment.spec import SpecInputs, load_spec

runner = CliRunner()
SR = 22050


@pytest.fixture(scope="module")
def corpora(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """music/: four 3.5-s tone tracks (pre-training); probe/hum|hiss/: 6 clips each of 3 s."""
    root = tmp_path_factory.mktemp("corpora")
    rng = np.random.default_rng(0)
    t = np.arange(int(3.5 * SR)) / SR
    (root / "music").mkdir()
    for k, freq in enumerate((110.0, 290.0, 740.0, 1900.0)):
        wave = 0.3 * np.sin(2 * np.pi * freq * t) + 0.02 * rng.standard_normal(t.size)
        sf.write(root / "music" / f"track{k}.wav", wave.astype(np.float32), SR)
    for name in ("hum", "hiss"):
        (root / "probe" / name).mkdir(parents=True)
    t = t[: 3 * SR]
    for i in range(6):
        hum = 0.4 * np.sin(2 * np.pi * rng.uniform(60, 200) * t)
        hiss = np.diff(rng.standard_normal(t.size + 1)) * 0.2
        sf.write(root / "probe" / "hum" / f"hum{i}.wav", hum.astype(np.float32), SR)
        sf.write(root / "probe" / "hiss" / f"hiss{i}.wav", hiss.astype(np.float32), SR)
    return root


HEADER = """
title = "tiny"
columns = ["model", "pretrain data", "probe", "steps"]
[data]
music = "{root}/music"
probe = "{root}/probe"
[defaults]
probe = "probe"
linear = {{ folds = 2, max_epochs = 20 }}
"""


def write_spec(path: Path, root: Path, cells: str) -> Path:
    path.write_text(HEADER.format(root=root) + cells)
    return path


TWO_CELLS = """
[[cell]]
name = "MFCC"
kind = "mfcc"
[[cell]]
name = "CLMR"
kind = "pretrain"
data = "music"
pretrain = { batch_size = 4, max_steps = 200, augment = { pitch_p = 0.0, reverb_p = 0.0 } }
"""


THESIS_CELLS = """
[[cell]]
name = "CPC"
kind = "pretrain"
data = "music"
method = "cpc"
pretrain = { batch_size = 4, max_steps = 300 }
[[cell]]
name = "supervised"
kind = "supervised"
pretrain = { batch_size = 4, max_steps = 300 }
"""


def test_a_model_cell_probes_an_existing_encoder(corpora, tmp_path, tiny_encoder) -> None:
    cells = f'[[cell]]\nname = "given"\nkind = "model"\nmodel = "{tiny_encoder}"\n'
    spec = write_spec(tmp_path / "spec.toml", corpora, cells)
    args = ["train", "experiment", str(spec), "--output-dir", str(tmp_path / "run")]
    result = runner.invoke(app, [*args, "--no-progress"])
    assert result.exit_code == 0, result.output
    cell = json.loads((tmp_path / "run" / "report.json").read_text())["cells"][0]
    assert cell["items"] == 12 and cell["pretrain_steps"] == 0
    assert 0.0 <= cell["summary"]["accuracy"]["mean"] <= 1.0
    loaded = load_spec(spec, SpecInputs(kind_rules())).cells[0]
    assert loaded.model == str(tiny_encoder) and "model" in loaded.resolved()


@pytest.mark.slow  # a 3-step CPC pre-training, its probe, a 3-step supervised SampleCNN
def test_cpc_and_supervised_cells_run_at_tiny_scale(corpora, tmp_path, private_cache) -> None:
    spec = write_spec(tmp_path / "spec.toml", corpora, THESIS_CELLS)
    args = ["train", "experiment", str(spec), "--output-dir", str(tmp_path / "run")]
    result = runner.invoke(app, [*args, "--scale", "tiny", "--no-progress"])
    assert result.exit_code == 0, result.output
    cells = json.loads((tmp_path / "run" / "report.json").read_text())["cells"]
    assert [c["name"] for c in cells] == ["CPC", "supervised"]
    assert [c["pretrain_steps"] for c in cells] == [3, 0]
    for cell in cells:  # both probed all 12 clips and scored them (not NaN)
        assert cell["items"] == 12 and cell["summary"]["accuracy"]["mean"] is not None
    supervised = next((tmp_path / "run" / "cells").glob("*/supervised/summary.json"))
    assert json.loads(supervised.read_text())["encoder"] == "supervised"
    assert not list((tmp_path / "run" / "cells").glob("*/supervised/*.onnx"))  # tagger=False


@pytest.mark.slow  # a 2-step pre-training and two probes
def test_tiny_grid_reports_one_row_per_cell(corpora, tmp_path, private_cache) -> None:
    spec = write_spec(tmp_path / "spec.toml", corpora, TWO_CELLS)
    args = ["train", "experiment", str(spec), "--output-dir", str(tmp_path / "run")]
    result = runner.invoke(app, [*args, "--scale", "tiny", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "cell 1/2" in result.output and "cell 2/2" in result.output
    report = (tmp_path / "run" / "report.md").read_text()
    rows = [line for line in report.splitlines() if line.startswith("| ")][1:]  # after the header
    assert [r.split(" | ")[0] for r in rows] == ["| MFCC", "| CLMR"]
    assert "accuracy" in report and "| CLMR | music | probe | 2 |" in report
    cells = json.loads((tmp_path / "run" / "report.json").read_text())["cells"]
    assert [c["pretrain_steps"] for c in cells] == [0, 2]
    assert (tmp_path / "run" / "scores.png").stat().st_size > 0
    again = runner.invoke(app, [*args, "--scale", "tiny", "--no-progress"])
    assert again.exit_code == 0 and "0 run, 2 cached" in again.output


def test_a_failed_cell_resumes_without_rerunning_finished_ones(corpora, tmp_path) -> None:
    calls = {"mfcc": 0, "boom": 0}
    fixed = CellScores({"accuracy": (0.5, 0.0)}, "multiclass", 12, 0)

    def mfcc(cell, context):
        calls["mfcc"] += 1
        return RUNNERS["mfcc"].run(cell, context)

    def boom(cell, context):
        calls["boom"] += 1
        if calls["boom"] == 1:
            raise RuntimeError("killed in cell 2")
        return fixed

    rule = RUNNERS["mfcc"].rule
    runners = {"mfcc": CellKind(mfcc, rule), "boom": CellKind(boom, rule)}
    cells = '[[cell]]\nname = "MFCC"\nkind = "mfcc"\n[[cell]]\nname = "B"\nkind = "boom"\n'
    path = write_spec(tmp_path / "s.toml", corpora, cells)
    spec = load_spec(path, SpecInputs(kind_rules(runners)))
    options = GridOptions(runners=runners)
    with pytest.raises(RuntimeError, match="killed in cell 2"):
        run_grid(spec, tmp_path / "run", options)
    marker = cell_dir(tmp_path / "run", spec.cells[0]) / "done.json"
    stamp = marker.stat().st_mtime_ns
    assert not (cell_dir(tmp_path / "run", spec.cells[1]) / "done.json").exists()
    result = run_grid(spec, tmp_path / "run", options)
    assert calls == {"mfcc": 1, "boom": 2} and result.ran == ("B",)
    assert marker.stat().st_mtime_ns == stamp
    assert [r.scores.summary["accuracy"][0] for r in result.rows][1] == 0.5


def test_the_cell_key_follows_the_resolved_config_not_the_name(corpora, tmp_path) -> None:
    cells = '[[cell]]\nname = "A"\nkind = "mfcc"\nlabel_fraction = 0.5\n'
    spec = load_spec(write_spec(tmp_path / "s.toml", corpora, cells), SpecInputs(kind_rules()))
    cell = spec.cells[0]
    assert dataclasses.replace(cell, name="renamed").key() == cell.key()
    other = dataclasses.replace(cell, linear=dataclasses.replace(cell.linear, label_fraction=1.0))
    assert other.key() != cell.key()


BAD = {
    "unknown key": ('[[cell]]\nname = "A"\nkind = "mfcc"\nbatch = 3\n', "'batch'"),
    "unknown augmentation": (
        '[[cell]]\nname = "A"\nkind = "pretrain"\ndata = "music"\naugmentations = ["wobble"]\n',
        "'wobble'",
    ),
    "empty grid": ("", "grid is empty"),
    "unregistered kind": ('[[cell]]\nname = "S"\nkind = "byol"\n', "'byol'"),
    "unknown method": (
        '[[cell]]\nname = "C"\nkind = "pretrain"\ndata = "music"\nmethod = "byol"\n',
        "'byol'",
    ),
    "model without a model": ('[[cell]]\nname = "M"\nkind = "model"\n', "needs a `model`"),
    "missing model file": (
        '[[cell]]\nname = "M"\nkind = "model"\nmodel = "nowhere/enc.onnx"\n',
        "does not exist",
    ),
    "model on another kind": (
        '[[cell]]\nname = "M"\nkind = "mfcc"\nmodel = "clmr-free"\n',
        "takes no `model`",
    ),
    "unknown data name": ('[[cell]]\nname = "A"\nkind = "mfcc"\nprobe = "gtz"\n', "--data gtz="),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_specs_are_one_line_config_errors(case, corpora, tmp_path) -> None:
    cells, named = BAD[case]
    spec = write_spec(tmp_path / "s.toml", corpora, cells)
    with pytest.raises(ConfigError) as info:
        load_spec(spec, SpecInputs(kind_rules()))
    assert named in str(info.value) and "\n" not in str(info.value)


def test_a_bad_spec_or_option_exits_2_before_any_work(corpora, tmp_path) -> None:
    spec = write_spec(tmp_path / "s.toml", corpora, BAD["unknown key"][0])
    args = ["train", "experiment", str(spec), "--output-dir", str(tmp_path / "run")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "batch" in result.output
    assert runner.invoke(app, [*args, "--data", "no-equals"]).exit_code == 2
    assert runner.invoke(app, [*args, "--scale", "huge"]).exit_code == 2
    assert not (tmp_path / "run").exists()


SPECS = sorted((Path(__file__).resolve().parents[3] / "configs" / "experiments").glob("*.toml"))


@pytest.mark.parametrize("scale", ["full", "small", "tiny"])
@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_shipped_specs_validate(path, scale, corpora, shared_dir) -> None:
    music = corpora / "music"
    data = {"free-music": (music,), "clmr-demo": (music / "track0.wav",)}  # may be absent here
    spec = load_spec(path, SpecInputs(kind_rules(), data, scale))
    assert spec.cells and len({c.key() for c in spec.cells}) == len(spec.cells)
    if path.stem == "label-efficiency":  # one pre-training serves every label fraction
        assert len({c.pretrain_key() for c in spec.cells if c.kind == "pretrain"}) == 1


def test_one_view_cells_load_and_say_so_in_the_report(corpora, tmp_path) -> None:
    cells = """
[[cell]]
name = "both"
kind = "pretrain"
data = "music"
[[cell]]
name = "one"
kind = "pretrain"
data = "music"
pretrain = { augment = { views = 1 } }
"""
    both, one = load_spec(
        write_spec(tmp_path / "s.toml", corpora, cells), SpecInputs(kind_rules())
    ).cells
    assert both.pretrain and one.pretrain
    assert (both.pretrain.augment.views, one.pretrain.augment.views) == (2, 1)
    assert both.pretrain_key() != one.pretrain_key()
    scores = CellScores({}, "multiclass", 0, 0)
    text = [CellRow(c, scores).text("augmentations") for c in (both, one)]
    assert text == ["config's chain", "config's chain (one view)"]

"""report.md, report.json and the PNG plots of a linear-evaluation run."""

import json

import pytest

pytest.importorskip("torch")

from tests.training.linear.synthetic import synthetic
from training.linear.config import LinearEvalConfig
from training.linear.probe import run_linear_eval
from training.linear.report import write_report


def test_report_files(tmp_path):
    features, data = synthetic("multiclass", n_items=30)
    results = [
        run_linear_eval(features, data, LinearEvalConfig(max_epochs=5, folds=2, label_fraction=f))
        for f in (1.0, 0.2)
    ]
    paths = write_report(tmp_path / "run", results, notes={"encoder": "test.onnx"})
    assert {p.name for p in paths} == {"report.json", "report.md", "per_label.png", "fractions.png"}
    for png in ("per_label.png", "fractions.png"):
        assert (tmp_path / "run" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert [r["config"]["label_fraction"] for r in report["runs"]] == [1.0, 0.2]
    assert report["runs"][0]["summary"]["accuracy"]["mean"] == results[0].summary["accuracy"][0]
    assert set(report["runs"][0]["per_label"]) == {"l0", "l1", "l2"}
    md = (tmp_path / "run" / "report.md").read_text()
    assert "**encoder**: test.onnx" in md and "| r0f1 |" in md and "| l2 |" in md
    single = write_report(tmp_path / "one", results[:1])
    assert not (tmp_path / "one" / "fractions.png").exists() and len(single) == 3

"""The quality gate of the low-precision paths, on the bundled model and the demo songs."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from clmr_embed.digest import ModelFile
from clmr_embed.engines.choice import build, installed
from clmr_embed.engines.engine import REFERENCE, EngineConfig
from clmr_embed.engines.reference import load_reference
from tools.model_eval import DEMO_SONGS
from tools.precision import BUNDLED, Outputs, compare, quality_gate, run_songs


@pytest.fixture(scope="module")
def demo(shared_dir: Path) -> Path:
    return shared_dir / "audio" / "clmr_demo"


def test_the_gate_fails_a_distorted_path() -> None:
    reference = build(ModelFile.hashed(BUNDLED), REFERENCE, EngineConfig(device="cpu"))
    clips = load_reference().windows(reference.info.sample_rate, reference.info.window_samples)
    songs = {name: clips[i::4] for i, name in enumerate(DEMO_SONGS)}  # 3 windows per "song"
    fp32 = run_songs(reference, songs)
    assert compare(reference, fp32, fp32).passed
    rng = np.random.default_rng(0)
    spread = np.concatenate(list(fp32.embeddings.values())).std()
    noisy = Outputs(
        {k: v + 0.3 * spread * rng.standard_normal(v.shape) for k, v in fp32.embeddings.items()},
        {k: v[:, ::-1].copy() for k, v in fp32.logits.items()},  # tags reversed
        fp32.seconds,
    )
    report = compare(reference, noisy, fp32)
    assert not report.passed and report.cosine_min < 0.99
    assert max(report.top5_shared.values()) < 4
    tags_only = compare(reference, replace(noisy, embeddings=fp32.embeddings), fp32)
    assert not tags_only.passed and tags_only.cosine_min > 0.999


@pytest.mark.slow
def test_low_precision_paths_pass_the_gate(demo: Path) -> None:
    reports = quality_gate(BUNDLED, demo)
    expected = {("onnxruntime", "fp32"), ("onnxruntime", "int8")}
    if installed("openvino"):
        expected |= {("openvino", "fp32"), ("openvino", "bf16"), ("openvino", "int8")}
    assert set(reports) == expected
    for pair, report in reports.items():
        assert report.passed, (pair, report)
        assert report.cosine_min >= 0.99 and min(report.top5_shared.values()) >= 4
        assert max(abs(d) for d in report.retrieval_delta.values()) <= 0.01
    assert reports[REFERENCE].cosine_min == pytest.approx(1.0)

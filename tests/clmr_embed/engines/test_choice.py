"""Precision/engine choices: usage errors up front, today's fp32 by default, checked paths."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from clmr_embed.digest import ModelFile, file_sha256
from clmr_embed.engines import choice
from clmr_embed.engines.choice import candidates, check_choice, engine_version, open_engine
from clmr_embed.engines.engine import EngineConfig, PrecisionError
from clmr_embed.engines.gate import CheckResult, cache_path, check_key
from clmr_embed.errors import ConfigError, MissingDependencyError


@pytest.mark.parametrize(
    ("precision", "engine", "device", "message"),
    [
        ("fp16", None, "auto", "expected a precision in"),
        ("fp32", "tensorrt", "auto", "an engine in"),
        ("bf16", "onnxruntime", "auto", "'bf16' runs on openvino, not on engine 'onnxruntime'"),
        ("int8", None, "cuda", "runs on the CPU, not on device 'cuda'"),
    ],
)
def test_impossible_choices_are_config_errors(
    precision: str, engine: str | None, device: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        check_choice(precision, engine, device)


def test_a_missing_engine_names_its_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(choice, "installed", lambda engine: engine == "onnxruntime")
    with pytest.raises(MissingDependencyError, match=r"clmr-embed\[openvino\]"):
        check_choice("bf16")
    with pytest.raises(MissingDependencyError, match=r"clmr-embed\[openvino\]"):
        check_choice("fp32", "openvino")
    check_choice("int8")  # onnxruntime runs int8 too
    check_choice("auto")


def test_candidates(monkeypatch: pytest.MonkeyPatch, tiny_copy: Path) -> None:
    monkeypatch.setattr(choice, "installed", lambda engine: True)
    assert candidates(tiny_copy, "fp32", None) == [("onnxruntime", "fp32")]
    assert candidates(tiny_copy, "fp32", "openvino") == [("openvino", "fp32")]
    assert candidates(tiny_copy, "int8", None) == [("openvino", "int8"), ("onnxruntime", "int8")]
    auto = [("onnxruntime", "fp32"), ("openvino", "fp32"), ("openvino", "bf16")]
    assert candidates(tiny_copy, "auto", None) == auto  # no int8 file: no int8 candidate
    tiny_copy.with_name("tiny.int8.onnx").write_bytes(b"")
    assert candidates(tiny_copy, "auto", "onnxruntime") == [
        ("onnxruntime", "fp32"),
        ("onnxruntime", "int8"),
    ]


def test_fp32_default_is_onnxruntime_unchecked(tiny_tagger: Path) -> None:
    engine = open_engine(ModelFile.hashed(tiny_tagger))
    assert (engine.engine, engine.precision) == ("onnxruntime", "fp32")
    assert not cache_path().exists()  # the reference is not checked against itself


def test_other_paths_are_checked_once(tiny_tagger: Path) -> None:
    pytest.importorskip("openvino")
    engine = open_engine(ModelFile.hashed(tiny_tagger), EngineConfig(precision="bf16"))
    assert engine.engine == "openvino" and engine.precision in ("bf16", "fp32")
    results = json.loads(cache_path().read_text())
    assert [r["requested"] for r in results.values()] == ["bf16"]


def test_auto_takes_the_fastest_passing_path(tiny_tagger: Path) -> None:
    pytest.importorskip("openvino")
    engine = open_engine(ModelFile.hashed(tiny_tagger), EngineConfig(precision="auto"))
    results = json.loads(cache_path().read_text()).values()
    assert {(r["engine"], r["requested"]) for r in results} == {
        ("onnxruntime", "fp32"),
        ("openvino", "fp32"),
        ("openvino", "bf16"),
    }
    best = max((r for r in results if r["passed"]), key=lambda r: r["windows_per_s"])
    assert (engine.engine, engine.precision) == (best["engine"], best["precision"])


def test_a_path_that_failed_its_check_is_refused(tiny_tagger: Path) -> None:
    pytest.importorskip("openvino")
    key = check_key(file_sha256(tiny_tagger), "openvino", engine_version("openvino"), "bf16")
    failed = CheckResult(key, "openvino", "bf16", "bf16", 0.5, 0.9, 100.0, passed=False)
    cache_path().parent.mkdir(parents=True)
    cache_path().write_text(json.dumps({key: asdict(failed)}))
    with pytest.raises(PrecisionError, match="openvino bf16 is refused on this machine"):
        open_engine(ModelFile.hashed(tiny_tagger), EngineConfig(precision="bf16"))
    # auto passes over it: the reference always qualifies
    engine = open_engine(ModelFile.hashed(tiny_tagger), EngineConfig(precision="auto"))
    assert (engine.engine, engine.precision) != ("openvino", "bf16")

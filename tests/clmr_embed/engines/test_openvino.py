"""The OpenVINO engine: same numbers as onnxruntime at fp32, honest about what precision ran."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from clmr_embed.digest import ModelFile
from clmr_embed.engines import openvino as ov_engine
from clmr_embed.engines.engine import EngineConfig
from clmr_embed.engines.onnxruntime import OnnxRuntimeEngine
from clmr_embed.errors import ConfigError, ModelArtifactError

pytest.importorskip("openvino")
BUNDLED = Path(__file__).resolve().parents[3] / "clmr_embed" / "models" / "clmr-free.onnx"


def _windows(n: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (n, size)).astype(np.float32)


def test_fp32_matches_onnxruntime(tiny_tagger: Path) -> None:
    windows = _windows(6, 2187)
    engine = ov_engine.OpenVinoEngine(
        ModelFile.hashed(tiny_tagger), "fp32", EngineConfig(threads=2)
    )
    emb, logits = engine.run(windows)
    want_emb, want_logits = OnnxRuntimeEngine(ModelFile.hashed(tiny_tagger)).run(windows)
    np.testing.assert_allclose(emb, want_emb, atol=1e-4)
    assert logits is not None and want_logits is not None
    np.testing.assert_allclose(logits, want_logits, atol=1e-3)
    one, _ = engine.run(windows[:1])  # fewer windows than streams
    np.testing.assert_allclose(one, want_emb[:1], atol=1e-4)
    assert (engine.engine, engine.precision, engine.info.labels) == (
        "openvino",
        "fp32",
        ("low", "mid", "high"),
    )


def test_outputs_outlive_the_next_call(tiny_encoder: Path) -> None:
    engine = ov_engine.OpenVinoEngine(ModelFile.hashed(tiny_encoder))
    first, logits = engine.run(_windows(3, 2187, seed=1))
    kept = first.copy()
    engine.run(_windows(3, 2187, seed=2))
    np.testing.assert_array_equal(first, kept)  # not a view of the request's reused buffer
    assert logits is None


def test_bf16_reports_what_ran(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = ov_engine.OpenVinoEngine(ModelFile.hashed(BUNDLED), "bf16")
    import openvino

    has_bf16 = "BF16" in ov_engine.cpu_capabilities(openvino.Core())
    assert engine.precision == ("bf16" if has_bf16 else "fp32")
    # A CPU without bf16: the request falls back to fp32, and the engine says so.
    monkeypatch.setattr(ov_engine, "cpu_capabilities", lambda core: ("FP32", "INT8"))
    fallback = ov_engine.OpenVinoEngine(ModelFile.hashed(BUNDLED), "bf16")
    assert fallback.precision == "fp32" and "fp32" in fallback.detail


def test_refuses_cuda_and_unknown_precisions(tiny_tagger: Path) -> None:
    with pytest.raises(ConfigError, match="on the CPU"):
        ov_engine.OpenVinoEngine(ModelFile.hashed(tiny_tagger), "fp32", EngineConfig(device="cuda"))
    with pytest.raises(ConfigError, match="fp16"):
        ov_engine.OpenVinoEngine(ModelFile.hashed(tiny_tagger), "fp16")


def test_unreadable_file_is_an_artifact_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelArtifactError, match="not a model OpenVINO can read"):
        ov_engine.OpenVinoEngine(ModelFile.hashed(bad))


def test_compiled_model_is_cached_and_runs_the_same(tiny_tagger: Path, private_cache: Path) -> None:
    windows = _windows(4, 2187, seed=3)
    first = ov_engine.OpenVinoEngine(ModelFile.hashed(tiny_tagger)).run(windows)
    blobs = sorted((private_cache / "openvino").iterdir())
    assert blobs  # the first open wrote the compiled model
    again = ov_engine.OpenVinoEngine(ModelFile.hashed(tiny_tagger)).run(windows)
    assert sorted((private_cache / "openvino").iterdir()) == blobs  # the second read it back
    np.testing.assert_array_equal(first[0], again[0])


def test_unwritable_cache_compiles_without_one(
    tiny_encoder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("CLMR_EMBED_CACHE", str(blocker))
    assert ov_engine.compile_cache() is None
    emb, _ = ov_engine.OpenVinoEngine(ModelFile.hashed(tiny_encoder)).run(_windows(2, 2187))
    assert emb.shape[0] == 2

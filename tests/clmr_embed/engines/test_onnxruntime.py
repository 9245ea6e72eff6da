"""The onnxruntime engine: fp32 is exactly OnnxModel, int8 runs the file beside the model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from clmr_embed.digest import ModelFile
from clmr_embed.engines.engine import EngineConfig
from clmr_embed.engines.onnxruntime import OnnxRuntimeEngine
from clmr_embed.errors import ModelArtifactError
from clmr_embed.model import OnnxModel, SessionConfig


def test_fp32_is_onnxmodel(tiny_tagger: Path) -> None:
    windows = np.random.default_rng(0).uniform(-1, 1, (5, 2187)).astype(np.float32)
    engine = OnnxRuntimeEngine(ModelFile.hashed(tiny_tagger), "fp32", EngineConfig(device="cpu"))
    want_emb, want_logits = OnnxModel(tiny_tagger, SessionConfig(device="cpu")).run(windows)
    emb, logits = engine.run(windows)
    np.testing.assert_array_equal(emb, want_emb)
    assert logits is not None and want_logits is not None
    np.testing.assert_array_equal(logits, want_logits)
    assert (engine.engine, engine.precision) == ("onnxruntime", "fp32")
    assert engine.info.name == "tiny" and engine.path == tiny_tagger and len(engine.sha256) == 64
    assert engine.version and "CPUExecutionProvider" in engine.detail


def test_encoder_gives_no_logits(tiny_encoder: Path) -> None:
    emb, logits = OnnxRuntimeEngine(ModelFile.hashed(tiny_encoder)).run(
        np.zeros((2, 2187), np.float32)
    )
    assert emb.shape == (2, 16) and logits is None


def test_int8_without_its_file_says_how_to_build_it(tiny_copy: Path) -> None:
    with pytest.raises(ModelArtifactError, match="no int8 file tiny.int8.onnx"):
        OnnxRuntimeEngine(ModelFile.hashed(tiny_copy), "int8")

"""OnnxModel: the artifact's graph I/O contract, batched runs, the head-only model, providers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from clmr_embed.artifact import GRAPH_IO
from clmr_embed.errors import ConfigError, MissingDependencyError, ModelArtifactError
from clmr_embed.model import OnnxModel, SessionConfig, choose_providers
from tests.fixtures.models import TinySpec, build_tiny_model


def _windows(n: int) -> np.ndarray:
    return np.random.default_rng(1).standard_normal((n, 2187)).astype(np.float32) * 0.1


def test_head_logits_equal_the_taggers_for_the_same_embedding(
    tmp_path: Path, tiny_tagger: Path
) -> None:
    head = OnnxModel(build_tiny_model(tmp_path / "head.onnx", TinySpec(kind="head")))
    tagger = OnnxModel(tiny_tagger)
    assert head.info.kind == "head" and head.info.labels == tagger.info.labels
    embeddings, logits = tagger.run(_windows(5))
    assert logits is not None and logits.shape == (5, 3)
    np.testing.assert_allclose(head.run_head(embeddings), logits, rtol=1e-5, atol=1e-6)
    with pytest.raises(ModelArtifactError, match="head-only"):
        head.run(_windows(1))
    with pytest.raises(ModelArtifactError, match="not a head-only"):
        tagger.run_head(embeddings)


def test_encoder_runs_without_logits(tiny_encoder: Path, tiny_tagger: Path) -> None:
    embeddings, logits = OnnxModel(tiny_encoder).run(_windows(3))
    assert logits is None and embeddings.shape == (3, 16) and embeddings.dtype == np.float32
    tagged, _ = OnnxModel(tiny_tagger).run(_windows(3))
    np.testing.assert_allclose(embeddings, tagged, atol=1e-6)  # same seed, same encoder


def test_graph_names_must_match_the_contract(tmp_path: Path, tiny_tagger: Path) -> None:
    model = onnx.load(tiny_tagger)
    model.graph.output[1].name = "scores"  # logits under another name
    model.graph.node[-1].output[0] = "scores"
    renamed = tmp_path / "renamed.onnx"
    onnx.save(model, renamed)
    with pytest.raises(ModelArtifactError) as caught:
        OnnxModel(renamed)
    message = str(caught.value)
    assert "renamed.onnx" in message and str(list(GRAPH_IO["tagger"].outputs)) in message
    assert "scores" in message


def test_choose_providers() -> None:
    assert choose_providers("auto", ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    both = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert choose_providers("auto", both) == both
    assert choose_providers("cpu", both) == ["CPUExecutionProvider"]
    with pytest.raises(ConfigError, match="tpu") as caught:
        choose_providers("tpu", both)
    assert "--" not in str(caught.value)
    with pytest.raises(MissingDependencyError, match="clmr-embed\\[gpu\\]") as missing:
        choose_providers("cuda", ["CPUExecutionProvider"])
    assert "--" not in str(missing.value)


def test_io_binding_gives_the_plain_runs_numbers(tiny_tagger: Path) -> None:
    """The IO-binding path (CUDA's default) is exercised here on the CPU device."""
    plain = OnnxModel(tiny_tagger, SessionConfig(device="cpu"))
    bound = OnnxModel(tiny_tagger, SessionConfig(device="cpu", io_binding=True))
    assert plain.binding_device is None and bound.binding_device == "cpu"
    windows = np.random.default_rng(3).uniform(-1, 1, (5, plain.info.window_samples))
    (e1, l1), (e2, l2) = (m.run(windows.astype(np.float32)) for m in (plain, bound))
    np.testing.assert_array_equal(e1, e2)
    assert l1 is not None and l2 is not None
    np.testing.assert_array_equal(l1, l2)

"""Tiny ONNX encoders/taggers with full clmr.* metadata, built with onnx.helper (no torch)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from clmr_embed import __version__
from clmr_embed.artifact import ModelInfo


@dataclass(frozen=True)
class TinySpec:
    """Shape of a tiny stand-in model (a random projection + tanh, and a linear head)."""

    kind: str = "tagger"  # "encoder" or "tagger"
    window: int = 2187  # samples per window (3**7): fast, and not CLMR's 59049 on purpose
    sample_rate: int = 8000  # Hz: the runtime must take it from the metadata
    dim: int = 16  # embedding size
    labels: tuple[str, ...] = ("low", "mid", "high")  # tagger outputs
    task: str = "multilabel"  # "multilabel" or "multiclass"
    name: str = "tiny"  # model name in the metadata
    seed: int = 0  # weights


def build_tiny_model(path: Path, spec: TinySpec | None = None) -> Path:
    """Write a tiny ONNX model honouring the artifact contract (I/O names and metadata)."""
    spec = spec or TinySpec()
    rng = np.random.default_rng(spec.seed)
    proj = (rng.standard_normal((spec.window, spec.dim)) / np.sqrt(spec.window)).astype(np.float32)
    inits = [
        numpy_helper.from_array(proj * 8, "proj"),
        numpy_helper.from_array(np.array([-1, spec.window], dtype=np.int64), "shape"),
    ]
    nodes = [
        helper.make_node("Reshape", ["audio", "shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "proj"], ["pre"]),
        helper.make_node("Tanh", ["pre"], ["embedding"]),
    ]
    audio = helper.make_tensor_value_info("audio", TensorProto.FLOAT, ["batch", 1, spec.window])
    outputs = [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", spec.dim])]
    if spec.kind == "tagger":
        n = len(spec.labels)
        inits += [
            numpy_helper.from_array(rng.standard_normal((spec.dim, n)).astype(np.float32), "w"),
            numpy_helper.from_array(rng.standard_normal(n).astype(np.float32), "b"),
        ]
        nodes += [
            helper.make_node("MatMul", ["embedding", "w"], ["mm"]),
            helper.make_node("Add", ["mm", "b"], ["logits"]),
        ]
        outputs.append(helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", n]))
    graph = helper.make_graph(nodes, spec.name, [audio], outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    info = ModelInfo(
        kind=spec.kind,
        name=spec.name,
        sample_rate=spec.sample_rate,
        window_samples=spec.window,
        embedding_dim=spec.dim,
        labels=spec.labels if spec.kind == "tagger" else (),
        task=spec.task if spec.kind == "tagger" else "",
        licence="test model",
        source_sha256="0" * 64,
        version=__version__,
        trained=True,
    )
    helper.set_model_props(model, info.to_metadata())
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path

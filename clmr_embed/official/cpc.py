"""CLMR v1's CPC encoder, torch-free: its checkpoint's arrays checked, and its ONNX nodes."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from clmr_embed.artifact import ARCHITECTURES, AUDIO, EMBEDDING
from clmr_embed.constants import CPC_FILTERS, CPC_PADDING, CPC_STRIDES, SAMPLE_RATE, WINDOW_SAMPLES
from clmr_embed.errors import CheckpointError
from clmr_embed.official.weights import Arrays, Weights

CPC = ARCHITECTURES[1]
GRU_KEYS = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")  # torch's nn.GRU


def cpc_shapes(hidden_dim: int, context_dim: int) -> dict[str, tuple[int, ...]]:
    """Every key of a CPCEncoder state dict and its shape (`conv.{2i}` Conv1d, then the GRU)."""
    shapes: dict[str, tuple[int, ...]] = {}
    width = 1
    for i, size in enumerate(CPC_FILTERS):
        shapes[f"conv.{2 * i}.weight"] = (hidden_dim, width, size)
        shapes[f"conv.{2 * i}.bias"] = (hidden_dim,)
        width = hidden_dim
    gates = 3 * context_dim  # reset, update and new gates stacked
    shapes |= {
        "gru.weight_ih_l0": (gates, hidden_dim),
        "gru.weight_hh_l0": (gates, context_dim),
        "gru.bias_ih_l0": (gates,),
        "gru.bias_hh_l0": (gates,),
    }
    return shapes


def is_cpc(payload: Any) -> bool:
    """Whether a clmr-embed checkpoint's payload holds a CPC encoder."""
    return isinstance(payload, Mapping) and payload.get("architecture") == CPC


def cpc_weights(payload: Mapping[str, Any], path: Path) -> Weights:
    """A clmr-embed CPC checkpoint's encoder, every key and shape checked against its config.

    Raises:
        CheckpointError: no cpc_config, a head inside, or a missing, extra or misshapen key.
    """
    config = payload.get("cpc_config") or {}
    if not config:
        raise CheckpointError(f"{path} says architecture 'cpc' but has no cpc_config; re-save it")
    if payload.get("head_state"):
        raise CheckpointError(
            f"{path} holds a CPC encoder and a head; convert the encoder alone and pass the head "
            "as a separate head file, or compose a tagger with a linear probe"
        )
    state = payload.get("encoder_state") or {}
    shapes = cpc_shapes(int(config["hidden_dim"]), int(config["context_dim"]))
    unexpected = sorted(set(state) - set(shapes))
    if unexpected:
        raise CheckpointError(f"{path}: unexpected CPC key {unexpected[0]!r}; is it a CPC run?")
    arrays: Arrays = {}
    for key, shape in shapes.items():
        if key not in state:
            raise CheckpointError(f"{path}: CPC key {key!r} is missing; the file is incomplete")
        array = np.asarray(state[key], dtype=np.float32)
        if array.shape != shape:
            raise CheckpointError(
                f"{path}: CPC key {key!r} has shape {list(array.shape)}, expected {list(shape)}"
            )
        arrays[key] = array
    return Weights(
        source=str(payload.get("source") or "clmr-embed"),
        encoder=arrays,
        architecture=CPC,
        sample_rate=int(config.get("sample_rate", SAMPLE_RATE)),
        window_samples=int(config.get("window_samples", WINDOW_SAMPLES)),
        step=int(payload.get("step") or 0),
        extra=dict(payload.get("extra") or {}),
        method=str((payload.get("train_config") or {}).get("method", CPC)),
    )


def _onnx_gates(array: np.ndarray) -> np.ndarray:
    """torch's GRU gate blocks (reset, update, new) in ONNX's order (update, reset, hidden)."""
    r, z, n = np.split(array, 3, axis=0)
    return np.concatenate([z, r, n], axis=0)


def cpc_nodes(arrays: Arrays) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """`audio` (batch, 1, window) -> Conv/Relu stages -> GRU over frames -> time-mean ->
    `embedding` (batch, context_dim): CPCEncoder.forward."""
    nodes, inits, previous = [], [], AUDIO
    stages = zip(CPC_STRIDES, CPC_FILTERS, CPC_PADDING, strict=True)
    for i, (stride, size, pad) in enumerate(stages):
        prefix = f"encoder.conv.{2 * i}."  # torch's keys: Conv1d at even indices, ReLU at odd
        inits += [
            numpy_helper.from_array(arrays[f"conv.{2 * i}.weight"], prefix + "weight"),
            numpy_helper.from_array(arrays[f"conv.{2 * i}.bias"], prefix + "bias"),
        ]
        conv = helper.make_node(
            "Conv", [previous, prefix + "weight", prefix + "bias"], [f"conv_{i}"],
            kernel_shape=[size], strides=[stride], pads=[pad, pad],
        )  # fmt: skip
        nodes += [conv, helper.make_node("Relu", [f"conv_{i}"], [f"relu_{i}"])]
        previous = f"relu_{i}"
    w, r, b_ih, b_hh = (_onnx_gates(arrays[f"gru.{key}"]) for key in GRU_KEYS)
    inits += [
        numpy_helper.from_array(w[None], "encoder.gru.W"),
        numpy_helper.from_array(r[None], "encoder.gru.R"),
        numpy_helper.from_array(np.concatenate([b_ih, b_hh])[None], "encoder.gru.B"),
        numpy_helper.from_array(np.array([0, 1], np.int64), "axes_0_1"),
    ]
    gru = helper.make_node(
        "GRU", ["frames_first", "encoder.gru.W", "encoder.gru.R", "encoder.gru.B"], ["context"],
        hidden_size=r.shape[1],
        linear_before_reset=1,  # torch applies the reset gate after the recurrent matmul
    )  # fmt: skip
    nodes += [
        helper.make_node("Transpose", [previous], ["frames_first"], perm=[2, 0, 1]),
        gru,  # context: (frames, 1 direction, batch, context_dim)
        helper.make_node("ReduceMean", ["context", "axes_0_1"], [EMBEDDING], keepdims=0),
    ]
    return nodes, inits

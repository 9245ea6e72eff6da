"""CPC encoder -> ONNX: Conv/Relu stages, one GRU, the time-mean of its output as embedding."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from clmr_embed import __version__
from clmr_embed.artifact import ENCODER_IO, ModelInfo
from clmr_embed.official.graph import IR_VERSION, OPSET
from training.config import CPC_FILTERS, CPC_PADDING, CPC_STRIDES
from training.cpc import CPCEncoder


def _array(encoder: CPCEncoder, key: str) -> np.ndarray:
    return encoder.state_dict()[key].detach().cpu().numpy().astype(np.float32)


def _onnx_gates(weight: np.ndarray) -> np.ndarray:
    """torch's GRU gate blocks (reset, update, new) in ONNX's order (update, reset, hidden)."""
    r, z, n = np.split(weight, 3, axis=0)
    return np.concatenate([z, r, n], axis=0)


def _conv_nodes(encoder: CPCEncoder) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    nodes, inits, previous = [], [], ENCODER_IO.inputs[0]
    stages = zip(CPC_STRIDES, CPC_FILTERS, CPC_PADDING, strict=True)
    for i, (stride, size, pad) in enumerate(stages):
        key = f"conv.{2 * i}."  # the torch keys: Conv1d at even indices, ReLU at odd ones
        prefix = "encoder." + key
        inits += [
            numpy_helper.from_array(_array(encoder, key + "weight"), prefix + "weight"),
            numpy_helper.from_array(_array(encoder, key + "bias"), prefix + "bias"),
        ]
        conv = helper.make_node(
            "Conv",
            [previous, prefix + "weight", prefix + "bias"],
            [f"conv_{i}"],
            kernel_shape=[size],
            strides=[stride],
            pads=[pad, pad],
        )
        nodes += [conv, helper.make_node("Relu", [f"conv_{i}"], [f"relu_{i}"])]
        previous = f"relu_{i}"
    return nodes, inits


def _gru_nodes(encoder: CPCEncoder, z: str) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """(batch, hidden, frames) -> GRU over frames -> mean over frames -> `embedding`."""
    w = _onnx_gates(_array(encoder, "gru.weight_ih_l0"))[None]
    r = _onnx_gates(_array(encoder, "gru.weight_hh_l0"))[None]
    biases = [_onnx_gates(_array(encoder, f"gru.bias_{k}_l0")) for k in ("ih", "hh")]
    b = np.concatenate(biases)[None]  # ONNX's B: input biases, then recurrent ones
    inits = [
        numpy_helper.from_array(w, "encoder.gru.W"),
        numpy_helper.from_array(r, "encoder.gru.R"),
        numpy_helper.from_array(b, "encoder.gru.B"),
        numpy_helper.from_array(np.array([0, 1], np.int64), "axes_0_1"),
    ]
    nodes = [
        helper.make_node("Transpose", [z], ["frames_first"], perm=[2, 0, 1]),
        # torch's GRU applies the reset gate after the recurrent matmul: linear_before_reset
        helper.make_node(
            "GRU",
            ["frames_first", "encoder.gru.W", "encoder.gru.R", "encoder.gru.B"],
            ["context"],  # (frames, 1 direction, batch, context_dim)
            hidden_size=encoder.config.context_dim,
            linear_before_reset=1,
        ),
        helper.make_node("ReduceMean", ["context", "axes_0_1"], ["embedding"], keepdims=0),
    ]
    return nodes, inits


def cpc_model(encoder: CPCEncoder, info: ModelInfo) -> onnx.ModelProto:
    """The encoder ONNX of a CPCEncoder: `audio` (batch, 1, window) -> `embedding` (batch, C).

    Args:
        encoder: the CPC encoder (its config gives the window and the embedding width).
        info: the file's metadata, kind "encoder", written as `clmr.*` properties.
    """
    conv, conv_inits = _conv_nodes(encoder)
    gru, gru_inits = _gru_nodes(encoder, conv[-1].output[0])
    audio = helper.make_tensor_value_info(
        ENCODER_IO.inputs[0], TensorProto.FLOAT, ["batch", 1, encoder.config.window_samples]
    )
    embedding = helper.make_tensor_value_info(
        ENCODER_IO.outputs[0], TensorProto.FLOAT, ["batch", encoder.config.embedding_dim]
    )
    graph = helper.make_graph(
        conv + gru, info.name, [audio], [embedding], initializer=conv_inits + gru_inits
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="clmr-embed",
        producer_version=__version__,
        ir_version=IR_VERSION,
        doc_string=info.description,
    )
    helper.set_model_props(model, info.to_metadata())
    onnx.checker.check_model(model, full_check=True)
    return model

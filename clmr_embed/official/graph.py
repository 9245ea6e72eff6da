"""SampleCNN weights -> ONNX: the one graph builder (export and the torch-free import use it).

Unit-height Conv (BatchNorm folded in) -> Relu -> MaxPool per block on (batch, 1, 1, samples),
which onnxruntime runs faster than 1-D convolutions (about 1.2-1.8x here), flattened to the
embedding; a head is Gemm layers. Parity with torch is checked by `clmr-embed export` itself
(export/verify.py) and by tests/clmr_embed/official/test_convert.py.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from clmr_embed import __version__
from clmr_embed.artifact import ARCHITECTURES, AUDIO, EMBEDDING, GRAPH_IO, LOGITS, ModelInfo
from clmr_embed.official.cpc import cpc_nodes
from clmr_embed.official.layouts import KERNEL
from clmr_embed.official.weights import Arrays, Weights

OPSET = 18  # the exporter's opset (export/onnx.py)
IR_VERSION = 10
BN_EPS = 1e-5  # torch.nn.BatchNorm1d's default, which CLMR's SampleCNN uses
POOLED_BLOCKS = range(1, 10)  # blocks 1..9 end in MaxPool(3, 3); 0 and 10 do not


def fold_batchnorm(arrays: Arrays, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Block `block`'s conv weight (out, in, 1, k) and bias with its eval-mode BatchNorm folded in.

    Computed in float64 and rounded once, so the fold adds no more error than the export's.
    """
    conv, norm = f"sequential.{block}.0.", f"sequential.{block}.1."
    scale = arrays[norm + "weight"].astype(np.float64) / np.sqrt(
        arrays[norm + "running_var"].astype(np.float64) + BN_EPS
    )
    weight = arrays[conv + "weight"].astype(np.float64) * scale[:, None, None]
    bias = (arrays[conv + "bias"] - arrays[norm + "running_mean"]) * scale + arrays[norm + "bias"]
    return weight[:, :, None, :].astype(np.float32), bias.astype(np.float32)


def _encoder_nodes(
    arrays: Arrays, blocks: int
) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    nodes = [helper.make_node("Unsqueeze", [AUDIO, "axis_2"], ["image"])]
    inits = [numpy_helper.from_array(np.array([2], np.int64), "axis_2")]
    previous = "image"
    for i in range(blocks):
        weight, bias = fold_batchnorm(arrays, i)
        prefix = f"encoder.sequential.{i}.0."
        inits += [
            numpy_helper.from_array(weight, prefix + "weight"),
            numpy_helper.from_array(bias, prefix + "bias"),
        ]
        first = i == 0  # stride 3, no padding; the others stride 1, padding 1
        nodes.append(
            helper.make_node(
                "Conv",
                [previous, prefix + "weight", prefix + "bias"],
                [f"conv_{i}"],
                kernel_shape=[1, KERNEL],
                strides=[1, KERNEL if first else 1],
                pads=[0, 0, 0, 0] if first else [0, 1, 0, 1],
            )
        )
        nodes.append(helper.make_node("Relu", [f"conv_{i}"], [f"relu_{i}"]))
        previous = f"relu_{i}"
        if i in POOLED_BLOCKS:
            nodes.append(
                helper.make_node(
                    "MaxPool", [previous], [f"pool_{i}"], kernel_shape=[1, 3], strides=[1, 3]
                )
            )
            previous = f"pool_{i}"
    # CLMR flattens the last block (length 1 at 59049 samples); this is not global pooling.
    nodes.append(helper.make_node("Flatten", [previous], [EMBEDDING], axis=1))
    return nodes, inits


def _head_nodes(arrays: Arrays) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    layers = [j for j in (0, 2) if f"{j}.weight" in arrays]
    nodes, inits, previous = [], [], EMBEDDING
    for n, j in enumerate(layers):
        last = n == len(layers) - 1
        output = LOGITS if last else f"head_hidden_{j}"
        inits += [
            numpy_helper.from_array(arrays[f"{j}.weight"], f"head.{j}.weight"),
            numpy_helper.from_array(arrays[f"{j}.bias"], f"head.{j}.bias"),
        ]
        nodes.append(
            helper.make_node(
                "Gemm", [previous, f"head.{j}.weight", f"head.{j}.bias"], [output], transB=1
            )
        )
        if not last:
            nodes.append(helper.make_node("Relu", [output], [f"head_relu_{j}"]))
            previous = f"head_relu_{j}"
    return nodes, inits


def _graph_parts(
    weights: Weights, info: ModelInfo
) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto], list[onnx.ValueInfoProto]]:
    """Nodes, initialisers and outputs of an encoder, tagger or head graph."""
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    outputs = []
    if info.kind != "head":
        if weights.encoder is None:
            raise ValueError(f"a {info.kind} ONNX needs encoder weights")
        if weights.architecture == ARCHITECTURES[1]:
            nodes, inits = cpc_nodes(weights.encoder)
        else:
            nodes, inits = _encoder_nodes(weights.encoder, len(weights.channels))
        width: list[str | int | None] = ["batch", info.embedding_dim]
        outputs.append(helper.make_tensor_value_info(EMBEDDING, TensorProto.FLOAT, width))
    if info.kind != "encoder":
        if weights.head is None:
            raise ValueError(f"a {info.kind} ONNX needs head weights")
        head_nodes, head_inits = _head_nodes(weights.head)
        nodes, inits = nodes + head_nodes, inits + head_inits
        labels: list[str | int | None] = ["batch", len(info.labels)]
        outputs.append(helper.make_tensor_value_info(LOGITS, TensorProto.FLOAT, labels))
    return nodes, inits, outputs


def build_model(weights: Weights, info: ModelInfo) -> onnx.ModelProto:
    """The ONNX model of `weights` as `info.kind` says: an encoder (`audio` -> `embedding`), a
    tagger (-> `embedding`, `logits`) or a head (`embedding` -> `logits`); dynamic batch.

    Args:
        weights: imported weights with the parts the kind needs.
        info: the file's metadata (clmr_embed.artifact); written as `clmr.*` properties.
    """
    nodes, inits, outputs = _graph_parts(weights, info)
    head = info.kind == "head"
    width = info.embedding_dim if head else info.window_samples
    shape: list[str | int | None] = ["batch", width] if head else ["batch", 1, width]
    source = helper.make_tensor_value_info(GRAPH_IO[info.kind].inputs[0], TensorProto.FLOAT, shape)
    graph = helper.make_graph(nodes, info.name, [source], outputs, initializer=inits)
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

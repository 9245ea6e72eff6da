"""One tagger ONNX from an encoder ONNX and a trained head: export the head, merge the graphs."""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Sequence
from pathlib import Path

import onnx
import onnx.compose
import onnx.utils
import onnx.version_converter

from clmr_embed import __version__
from clmr_embed.artifact import EMBEDDING, ENCODER_IO, LOGITS, TAGGER_IO, ModelInfo, parse_metadata
from clmr_embed.atomic import atomic_path
from clmr_embed.errors import CheckpointError, ModelArtifactError
from export.info import Provenance, Shape, model_info
from export.onnx import export_head
from training.checkpoint import Checkpoint
from training.linear.probe import head_task
from training.samplecnn import TaggerHead

HEAD_PREFIX = "head/"  # prefix of the head's graph names, so no name can clash with the encoder's


def _read_encoder(path: Path) -> tuple[onnx.ModelProto, ModelInfo]:
    """An encoder ONNX, or the encoder part (audio -> embedding) of a tagger ONNX."""
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # any error: onnx raises protobuf/OS errors alike
        raise ModelArtifactError(f"cannot read encoder ONNX {path}: {exc}") from None
    info = parse_metadata({p.key: p.value for p in model.metadata_props}, path)
    outputs = [o.name for o in model.graph.output]
    if info.kind not in ("encoder", "tagger") or EMBEDDING not in outputs:
        raise ModelArtifactError(
            f"{path} is a {info.kind} with outputs {outputs}; pass an encoder or tagger ONNX "
            "(or a model name such as clmr-free)"
        )
    if info.kind == "tagger":  # its embedding output serves as the encoder; its head is dropped
        model = onnx.utils.Extractor(model).extract_model(list(ENCODER_IO.inputs), [EMBEDDING])
        info = dataclasses.replace(info, kind="encoder", labels=(), task="")
    return model, info


def _head_module(head: Checkpoint, info: ModelInfo, labels: Sequence[str]) -> TaggerHead:
    cfg = head.head_config
    if cfg is None or head.head_state is None:
        raise CheckpointError("the head checkpoint has no head_config/head_state; train a head")
    if cfg.in_dim != info.embedding_dim or cfg.n_labels != len(labels):
        raise CheckpointError(
            f"head maps {cfg.in_dim} -> {cfg.n_labels} but the encoder gives "
            f"{info.embedding_dim}-d embeddings and {len(labels)} labels were given; train the "
            "head on this encoder's features"
        )
    module = TaggerHead(cfg)
    module.load_state_dict(head.head_state)
    return module.eval()


def _rename(graph: onnx.GraphProto, old: str, new: str) -> None:
    """Rename a value everywhere in a graph (node inputs/outputs, graph inputs/outputs)."""
    for node in graph.node:
        node.input[:] = [new if x == old else x for x in node.input]
        node.output[:] = [new if x == old else x for x in node.output]
    for value in (*graph.input, *graph.output):
        if value.name == old:
            value.name = new


def _head_graph(module: TaggerHead, info: ModelInfo, encoder: onnx.ModelProto) -> onnx.ModelProto:
    """The head as ONNX in the encoder's opset and IR version, names prefixed, no metadata."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "head.onnx"
        export_head(module, path, info)
        model = onnx.load(str(path))
    opset = next(o.version for o in encoder.opset_import if o.domain in ("", "ai.onnx"))
    if next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) != opset:
        model = onnx.version_converter.convert_version(model, opset)
    model.ir_version = encoder.ir_version
    del model.metadata_props[:]
    model = onnx.compose.add_prefix(model, HEAD_PREFIX)
    _rename(model.graph, HEAD_PREFIX + LOGITS, LOGITS)
    return model


def compose_tagger(
    encoder_onnx: Path,
    head: Checkpoint,
    output: Path,
    labels: Sequence[str],
    task: str,
    name: str,
) -> Path:
    """Write `output`: the encoder ONNX and `head` merged into one tagger ONNX.

    The tagger maps `audio` (batch, 1, window) to `embedding` (batch, D) and `logits`
    (batch, n), with complete `clmr.*` metadata (kind "tagger", labels, task; sample rate, window,
    licence, source checksum and trained flag from the encoder), so `clmr-embed tag --model`
    runs it.

    Args:
        encoder_onnx: an encoder written by `clmr-embed export` (kind "encoder").
        head: a checkpoint with head_config and head_state (e.g. EvalResult.checkpoint).
        output: the .onnx file to write (replaced atomically).
        labels: output names, in logit order.
        task: "multiclass" (softmax) or "multilabel"/"soft" (sigmoid).
        name: model name written to clmr.name.

    Raises:
        ModelArtifactError: the encoder file is unreadable or not an encoder.
        CheckpointError: the head is missing or does not fit the encoder or labels.
    """
    encoder, enc_info = _read_encoder(Path(encoder_onnx))
    module = _head_module(head, enc_info, labels)
    kind = "MLP" if module.config.hidden_dim else "linear"
    provenance = Provenance(
        licence=enc_info.licence,
        source_sha256=enc_info.source_sha256,
        description=f"encoder {enc_info.name} ({Path(encoder_onnx).name}) + {kind} head "
        f"({head.source})",
        declared=enc_info.trained,  # the encoder's file already says whether it is trained
        method=enc_info.method,
    )
    info = model_info(
        "tagger", name, Shape.of_info(enc_info), provenance, tuple(labels), head_task(task)
    )
    head_model = _head_graph(module, info, encoder)
    del encoder.metadata_props[:]
    merged = onnx.compose.merge_models(
        encoder,
        head_model,
        io_map=[(EMBEDDING, HEAD_PREFIX + EMBEDDING)],
        outputs=list(TAGGER_IO.outputs),
        name=name,
        producer_name="clmr-embed",
        producer_version=__version__,
    )
    onnx.helper.set_model_props(merged, info.to_metadata())
    merged.doc_string = info.description
    onnx.checker.check_model(merged, full_check=True)
    with atomic_path(Path(output)) as tmp:
        onnx.save_model(merged, str(tmp))
    return Path(output)

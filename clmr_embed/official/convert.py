"""Checkpoint (official CLMR or clmr-embed's) -> encoder or tagger ONNX, without torch."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import onnx

from clmr_embed import __version__
from clmr_embed.artifact import ModelInfo, is_trained
from clmr_embed.atomic import atomic_path
from clmr_embed.digest import file_sha256
from clmr_embed.errors import CheckpointError
from clmr_embed.official.cpc import cpc_weights, is_cpc
from clmr_embed.official.graph import build_model
from clmr_embed.official.torchfile import read_torch_file
from clmr_embed.official.weights import Weights, import_weights

UNSPECIFIED_LICENCE = "unspecified (the checkpoint's own licence applies)"


@dataclass(frozen=True)
class Conversion:
    """One checkpoint (and maybe a separate head) to one ONNX file."""

    checkpoint: Path  # encoder checkpoint: official CLMR layout or clmr-embed's own
    output: Path  # the .onnx file to write (replaced atomically)
    head: Path | None = None  # head file (e.g. finetuner_checkpoint_200.pt); wins over one inside
    name: str = ""  # clmr.name; "" = the checkpoint's file stem
    licence: str = ""  # licence of the weights; "" = unspecified
    description: str = ""  # what the model is; "" = where it was converted from


def read_weights(path: Path) -> Weights:
    """A checkpoint's weights, read and checked without torch (see clmr_embed.official)."""
    payload = read_torch_file(path)
    if is_cpc(payload):
        return cpc_weights(payload, Path(path))
    return import_weights(payload, Path(path))


def _with_head(encoder: Weights, conversion: Conversion) -> tuple[Weights, str | None]:
    """The weights to write (a separate head file merged in) and the head's source, if any."""
    if encoder.encoder is None:
        raise CheckpointError(
            f"{conversion.checkpoint} holds no encoder (it is a {encoder.source}); pass an "
            "encoder checkpoint, and a head file with it where one is wanted"
        )
    if conversion.head is None:
        return encoder, (encoder.source if encoder.head is not None else None)
    head = read_weights(conversion.head)
    if head.head is None:
        raise CheckpointError(f"{conversion.head} holds no classifier head; pass a head file")
    if head.head_dims[0] != encoder.embedding_dim:
        raise CheckpointError(
            f"the head in {conversion.head} takes {head.head_dims[0]}-d embeddings but "
            f"{conversion.checkpoint} gives {encoder.embedding_dim}-d ones"
        )
    merged = replace(
        encoder, head=head.head, head_dims=head.head_dims, labels=head.labels, task=head.task
    )
    return merged, head.source


def _info(conversion: Conversion, weights: Weights, head_source: str | None) -> ModelInfo:
    tagger = head_source is not None
    sources = (weights.source, *([head_source] if head_source is not None else []))
    description = conversion.description or (
        f"converted by clmr-embed (no torch) from {conversion.checkpoint.name} ({weights.source})"
        + (f"; head from {conversion.head.name}" if conversion.head is not None else "")
    )
    return ModelInfo(
        kind="tagger" if tagger else "encoder",
        name=conversion.name or conversion.checkpoint.stem,
        sample_rate=weights.sample_rate,
        window_samples=weights.window_samples,
        embedding_dim=weights.embedding_dim,
        labels=weights.labels if tagger else (),
        task=weights.task if tagger else "",
        licence=conversion.licence or UNSPECIFIED_LICENCE,
        source_sha256=file_sha256(conversion.checkpoint),
        version=__version__,
        trained=is_trained(sources, weights.step, weights.extra.get("trained")),
        description=description,
        architecture=weights.architecture,
        method=weights.method,
    )


def convert(conversion: Conversion) -> ModelInfo:
    """Write `conversion.output`: the checkpoint's encoder (a tagger, with a head) as ONNX.

    Nothing is written unless every key, shape and the ONNX checker passed.

    Raises:
        CheckpointError: a file is missing, unreadable, of an unknown layout or mismatched.
    """
    weights, head_source = _with_head(read_weights(conversion.checkpoint), conversion)
    info = _info(conversion, weights, head_source)
    model = build_model(weights, info)
    conversion.output.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(conversion.output) as tmp:
        onnx.save_model(model, str(tmp))
    return info

"""The ONNX metadata contract between export and the runtime: write keys, read and check."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from clmr_embed.constants import ARTIFACT_FORMAT_VERSION
from clmr_embed.errors import ModelArtifactError

PREFIX = "clmr."
# audio->embedding; audio->embedding+logits; embedding->logits
KINDS = ("encoder", "tagger", "head")
TASKS = ("multilabel", "multiclass")  # sigmoid per label; softmax over labels
ARCHITECTURES = ("samplecnn", "cpc")  # the encoder's network: SampleCNN, or CLMR v1's CPC
METHODS = ("simclr", "cpc")  # how it was pre-trained: SimCLR's NT-Xent, or CPC's InfoNCE
REQUIRED = (
    "format_version",
    "kind",
    "name",
    "sample_rate",
    "window_samples",
    "embedding_dim",
    "licence",
    "source_checkpoint_sha256",
    "version",
    "trained",
)
LABELLED = ("labels", "task")  # required for taggers and heads


@dataclass(frozen=True)
class GraphIO:
    """Input and output names of one kind of artifact, each tensor (batch, ...)."""

    inputs: tuple[str, ...]  # graph input names
    outputs: tuple[str, ...]  # graph output names


AUDIO = "audio"  # (batch, 1, window) float32 mono at the file's sample rate
EMBEDDING = "embedding"  # (batch, dim) float32
LOGITS = "logits"  # (batch, n_labels) float32, before the sigmoid / softmax of `task`
ENCODER_IO = GraphIO((AUDIO,), (EMBEDDING,))
TAGGER_IO = GraphIO((AUDIO,), (EMBEDDING, LOGITS))
HEAD_IO = GraphIO((EMBEDDING,), (LOGITS,))
GRAPH_IO = {"encoder": ENCODER_IO, "tagger": TAGGER_IO, "head": HEAD_IO}


def check_io(path: Path, kind: str, inputs: Iterable[str], outputs: Iterable[str]) -> None:
    """Refuse a graph whose input/output names are not those of its kind (GRAPH_IO).

    Raises:
        ModelArtifactError: a name of the kind is missing.
    """
    io = GRAPH_IO[kind]
    found_in, found_out = list(inputs), list(outputs)
    if any(n not in found_in for n in io.inputs) or any(n not in found_out for n in io.outputs):
        raise ModelArtifactError(
            f"{path}: a {kind} must have inputs {list(io.inputs)} and outputs "
            f"{list(io.outputs)}, found inputs {found_in} and outputs {found_out}; re-export it"
        )


def refuse_head(path: Path, kind: str) -> None:
    """The one head-only refusal: audio runs through encoders and taggers only.

    Raises:
        ModelArtifactError: `kind` is "head".
    """
    if kind == "head":
        raise ModelArtifactError(
            f"{path} is a head-only model (embedding -> logits); "
            "use the encoder or tagger file for audio"
        )


def is_trained(sources: tuple[str, ...], step: int, declared: bool | None) -> bool:
    """The "trained" rule an export writes into clmr.trained.

    `sources` names where each part's weights came from ("clmr-embed" for our own checkpoints,
    anything else for imported official weights), `step` is the optimiser steps our checkpoint
    took, `declared` what the checkpoint itself says (the random-init baseline says False).
    A declaration wins; otherwise imported weights are trained, and ours once a step was taken.
    The layout alone never decides: an "official" key layout does not make official weights.
    """
    if declared is not None:
        return declared
    return all(s != "clmr-embed" for s in sources) or step > 0


@dataclass(frozen=True)
class ModelInfo:
    """What an exported ONNX file says about itself (its `clmr.*` metadata_props)."""

    kind: str  # "encoder", "tagger" or "head"
    name: str  # model name, e.g. "clmr-untrained" or the run name
    sample_rate: int  # Hz the encoder expects
    window_samples: int  # samples per window (59049 for SampleCNN)
    embedding_dim: int  # embedding width
    labels: tuple[str, ...] = ()  # output names of a tagger/head, in order
    task: str = ""  # "multilabel" (sigmoid) or "multiclass" (softmax); "" for encoders
    licence: str = ""  # licence note for the weights (and data they were trained on)
    source_sha256: str = ""  # sha256 of the checkpoint the file was exported from
    version: str = ""  # clmr-embed version that wrote it
    trained: bool = True  # False for random-init placeholders; shown as "untrained"
    description: str = ""  # free text: data, steps, provenance
    architecture: str = ARCHITECTURES[0]  # clmr.architecture; files without it are SampleCNN
    method: str = METHODS[0]  # clmr.method; files without it were trained with SimCLR

    @property
    def window_seconds(self) -> float:
        """Window length in seconds."""
        return self.window_samples / self.sample_rate

    def to_metadata(self) -> dict[str, str]:
        """The `clmr.*` string props to write into an ONNX file."""
        props = {
            "format_version": str(ARTIFACT_FORMAT_VERSION),
            "kind": self.kind,
            "name": self.name,
            "sample_rate": str(self.sample_rate),
            "window_samples": str(self.window_samples),
            "embedding_dim": str(self.embedding_dim),
            "licence": self.licence,
            "source_checkpoint_sha256": self.source_sha256,
            "version": self.version,
            "trained": "true" if self.trained else "false",
            "description": self.description,
            "architecture": self.architecture,
            "method": self.method,
        }
        if self.kind != "encoder":
            props["labels"] = json.dumps(list(self.labels))
            props["task"] = self.task
        return {PREFIX + k: v for k, v in props.items()}


def _int(props: dict[str, str], key: str, where: Path | str) -> int:
    try:
        value = int(props[key])
    except ValueError:
        raise ModelArtifactError(
            f"{where}: metadata clmr.{key}={props[key]!r} is not an integer; "
            "re-export with `clmr-embed export`"
        ) from None
    if value <= 0:
        raise ModelArtifactError(f"{where}: metadata clmr.{key}={value} must be positive")
    return value


def parse_metadata(metadata: dict[str, str], where: Path | str) -> ModelInfo:
    """Validate `clmr.*` metadata (e.g. onnxruntime's custom_metadata_map) into a ModelInfo.

    Raises:
        ModelArtifactError: a key is missing or invalid; the message names the key and the fix.
    """
    props = {k[len(PREFIX) :]: v for k, v in metadata.items() if k.startswith(PREFIX)}
    for key in REQUIRED:
        if key not in props:
            raise ModelArtifactError(
                f"{where} lacks metadata key clmr.{key}; it was not written by clmr-embed "
                "export. Re-export it with `clmr-embed export`"
            )
    if props["format_version"] != str(ARTIFACT_FORMAT_VERSION):
        raise ModelArtifactError(
            f"{where} has artifact format version {props['format_version']}; this clmr-embed "
            f"reads version {ARTIFACT_FORMAT_VERSION}. Re-export it or upgrade clmr-embed"
        )
    kind = props["kind"]
    if kind not in KINDS:
        raise ModelArtifactError(f"{where}: clmr.kind={kind!r} is not one of {list(KINDS)}")
    labels: tuple[str, ...] = ()
    task = ""
    if kind != "encoder":
        for key in LABELLED:
            if key not in props:
                raise ModelArtifactError(
                    f"{where} is a {kind} without metadata key clmr.{key}; re-export it"
                )
        try:
            labels = tuple(str(x) for x in json.loads(props["labels"]))
        except (json.JSONDecodeError, TypeError):
            raise ModelArtifactError(f"{where}: clmr.labels is not a JSON list") from None
        task = props["task"]
        if task not in TASKS:
            raise ModelArtifactError(f"{where}: clmr.task={task!r} is not one of {list(TASKS)}")
    return ModelInfo(
        kind=kind,
        name=props["name"],
        sample_rate=_int(props, "sample_rate", where),
        window_samples=_int(props, "window_samples", where),
        embedding_dim=_int(props, "embedding_dim", where),
        labels=labels,
        task=task,
        licence=props["licence"],
        source_sha256=props["source_checkpoint_sha256"],
        version=props["version"],
        trained=props["trained"] == "true",
        description=props.get("description", ""),
        architecture=_choice(props, "architecture", ARCHITECTURES, where),
        method=props.get("method", METHODS[0]),  # free text: a later method must still load
    )


def _choice(props: dict[str, str], key: str, valid: tuple[str, ...], where: Path | str) -> str:
    """An optional key (older files lack it: the first choice) that must be one of `valid`."""
    value = props.get(key, valid[0])
    if value not in valid:
        raise ModelArtifactError(
            f"{where}: clmr.{key}={value!r} is not one of {list(valid)}; upgrade clmr-embed"
        )
    return value

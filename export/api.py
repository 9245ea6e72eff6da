"""`clmr-embed export`: checkpoint -> ONNX + TorchScript encoder/tagger/head, parity-checked."""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from clmr_embed import __version__
from clmr_embed.artifact import ModelInfo
from clmr_embed.constants import SAMPLE_RATE, WINDOW_SAMPLES
from clmr_embed.digest import file_sha256
from clmr_embed.errors import CheckpointError, ClmrEmbedError, ConfigError
from export.conv2d import SampleCNN2d
from export.onnx import ENCODER_IO, HEAD_IO, TAGGER_IO, GraphIO, example_audio
from export.onnx import export_module as export_onnx_module
from export.torchscript import export_torchscript
from export.verify import BATCHES, Artifact, ParityRow, check_parity
from training.checkpoint import Checkpoint
from training.official import head_labels
from training.samplecnn import SampleCNN, Tagger, TaggerHead
from training.weights import load_checkpoint, load_head

UNSPECIFIED_LICENCE = "unspecified (pass --licence when exporting)"


class OutputExistsError(ClmrEmbedError):
    """An export output already exists and --force was not given."""


@dataclass(frozen=True, kw_only=True)
class ExportConfig:
    """What `run_export` reads and writes."""

    checkpoint: Path  # clmr-embed or official CLMR checkpoint: an encoder and maybe a head
    head: Path | None = None  # head file (e.g. finetuner_checkpoint_200.pt); wins over one inside
    output_dir: Path  # folder for the artifacts; created if missing
    force: bool = False  # overwrite existing outputs instead of refusing
    name: str | None = None  # artifact name prefix; None: the checkpoint's file stem
    licence: str | None = None  # licence note of the weights; None: "unspecified (...)"
    description: str | None = None  # metadata description; None: "exported from <checkpoint>"
    batch_check: tuple[int, ...] = BATCHES  # batch sizes of the parity check


@dataclass(frozen=True)
class ExportReport:
    """What `run_export` did."""

    files: tuple[Path, ...]  # artifacts written into output_dir
    parity: tuple[ParityRow, ...]  # max abs differences against torch
    seconds: float  # wall time of the whole export, parity check included


@dataclass(frozen=True)
class _Part:
    kind: str  # "encoder", "tagger" or "head"
    module: nn.Module  # torch model that TorchScript traces
    graph: nn.Module  # the same function as exported to ONNX (Conv2d form for speed)
    example: torch.Tensor  # example input, batch 2
    io: GraphIO  # input/output names
    info: ModelInfo  # metadata of this part's files
    reference: nn.Module  # torch model the parity check runs (the tagger's serves the encoder)
    reference_io: GraphIO  # names of the reference's outputs


def _modules(
    ckpt: Checkpoint, head_ckpt: Checkpoint | None, path: Path
) -> tuple[SampleCNN | None, TaggerHead | None]:
    encoder = head = None
    if ckpt.encoder_state is not None:
        encoder = SampleCNN(ckpt.encoder_config).eval()
        encoder.load_state_dict(ckpt.encoder_state, strict=True)
    if head_ckpt is not None and head_ckpt.head_state is not None:
        head = TaggerHead(head_ckpt.head_config).eval()
        head.load_state_dict(head_ckpt.head_state, strict=True)
    if encoder is None and head is None:
        raise CheckpointError(f"{path} holds neither an encoder nor a head; nothing to export")
    if encoder and head and head.config.in_dim != encoder.config.embedding_dim:
        raise CheckpointError(
            f"the head takes {head.config.in_dim}-d embeddings but {path} gives "
            f"{encoder.config.embedding_dim}-d ones; pass a head trained on this encoder"
        )
    return encoder, head


def _info(config: ExportConfig, ckpt: Checkpoint, head_ckpt: Checkpoint | None) -> ModelInfo:
    sources = [ckpt.source] + ([head_ckpt.source] if head_ckpt else [])
    head_cfg = head_ckpt.head_config if head_ckpt else None
    labels = (head_ckpt.labels or head_labels(head_cfg.n_labels)) if head_ckpt and head_cfg else []
    description = f"exported from {config.checkpoint.name} ({ckpt.source})"
    if config.head is not None and head_ckpt is not None:
        description += f"; head from {config.head.name} ({head_ckpt.source})"
    if config.description:
        description = f"{config.description} ({description})"
    enc = ckpt.encoder_config
    return ModelInfo(
        kind="tagger",
        name=config.name or config.checkpoint.stem,
        sample_rate=enc.sample_rate if enc else SAMPLE_RATE,
        window_samples=enc.window_samples if enc else WINDOW_SAMPLES,
        embedding_dim=enc.embedding_dim if enc else (head_cfg.in_dim if head_cfg else 0),
        labels=tuple(labels),
        task=head_cfg.task if head_cfg else "",
        # Not guessed from the key layout: an "official" layout does not make official weights.
        licence=config.licence or UNSPECIFIED_LICENCE,
        source_sha256=file_sha256(config.checkpoint),
        version=__version__,
        # Imported official weights are trained; our own checkpoints once a step was taken,
        # unless the checkpoint says otherwise (the random-init baseline sets extra["trained"]).
        trained=bool(
            ckpt.extra.get("trained", all(s != "clmr-embed" for s in sources) or ckpt.step > 0)
        ),
        description=description,
    )


def _parts(
    encoder: SampleCNN | None, head: TaggerHead | None, info: ModelInfo, head_sha: str
) -> list[_Part]:
    parts = []
    if encoder is not None:
        audio = example_audio(encoder)
        plain = dataclasses.replace(info, kind="encoder", labels=(), task="")
        # With a head, the tagger's torch run also gives the encoder's expected embeddings.
        tagger = Tagger(encoder, head).eval() if head is not None else None
        ref, ref_io = (tagger, TAGGER_IO) if tagger is not None else (encoder, ENCODER_IO)
        graph = SampleCNN2d(encoder)
        parts.append(_Part("encoder", encoder, graph, audio, ENCODER_IO, plain, ref, ref_io))
        if tagger is not None and head is not None:
            graph = Tagger(SampleCNN2d(encoder), head).eval()
            parts.append(_Part("tagger", tagger, graph, audio, TAGGER_IO, info, tagger, TAGGER_IO))
    if head is not None:
        head_info = dataclasses.replace(info, kind="head", source_sha256=head_sha)
        example = torch.zeros(2, head.config.in_dim)
        parts.append(_Part("head", head, head, example, HEAD_IO, head_info, head, HEAD_IO))
    return parts


def _check_name(name: str) -> str:
    if not name or Path(name).name != name or name.startswith("."):
        raise ConfigError(f"export name {name!r} must be a plain file name prefix, e.g. 'clmr'")
    return name


def run_export(config: ExportConfig) -> ExportReport:
    """Export a checkpoint's encoder (and tagger + head when there is a head), then check parity.

    Writes `<name>-encoder.onnx` (`audio` (batch, 1, 59049) float32 -> `embedding` (batch, D)),
    with a head also `<name>-tagger.onnx` (-> `embedding`, `logits`) and `<name>-head.onnx`
    (`embedding` -> `logits`), plus a TorchScript `.pt` of each. Files appear only after every
    artifact matched torch within 1e-4 on each batch size of `config.batch_check`.

    Raises:
        CheckpointError: a checkpoint or head file is missing, unreadable or mismatched.
        OutputExistsError: an output exists and `config.force` is False.
        ParityError: an artifact disagrees with torch (nothing is written).
    """
    start = time.perf_counter()
    name = _check_name(config.name or config.checkpoint.stem)
    ckpt = load_checkpoint(config.checkpoint)
    head_ckpt = load_head(config.head) if config.head is not None else None
    if head_ckpt is None and ckpt.head_state is not None:
        head_ckpt = ckpt
    encoder, head = _modules(ckpt, head_ckpt, config.checkpoint)
    info = dataclasses.replace(_info(config, ckpt, head_ckpt), name=name)
    head_sha = file_sha256(config.head) if config.head is not None else info.source_sha256
    parts = _parts(encoder, head, info, head_sha)
    files = [f"{name}-{part.kind}{suffix}" for part in parts for suffix in (".onnx", ".pt")]
    for filename in files:
        if (config.output_dir / filename).exists() and not config.force:
            raise OutputExistsError(
                f"{config.output_dir / filename} already exists; pass --force to overwrite it"
            )
    config.output_dir.mkdir(parents=True, exist_ok=True)
    # Write into a hidden folder beside the outputs, so a failed export leaves nothing behind.
    with tempfile.TemporaryDirectory(prefix=".clmr-export-", dir=config.output_dir) as tmp:
        artifacts = []
        for part in parts:
            onnx_path = Path(tmp) / f"{name}-{part.kind}.onnx"
            script_path = onnx_path.with_suffix(".pt")
            export_onnx_module(part.graph, part.example, onnx_path, part.io, part.info)
            export_torchscript(part.module, part.example, script_path, part.info)
            shape = tuple(part.example.shape[1:])
            for path in (onnx_path, script_path):
                ref_names = part.reference_io.outputs
                artifacts.append(Artifact(path, part.io, shape, part.reference, ref_names))
        rows = check_parity(artifacts, config.batch_check)
        for artifact in artifacts:
            os.replace(artifact.path, config.output_dir / artifact.path.name)
    written = tuple(config.output_dir / filename for filename in files)
    return ExportReport(written, tuple(rows), time.perf_counter() - start)

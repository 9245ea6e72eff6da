"""`clmr-embed export`: checkpoint -> ONNX + TorchScript encoder/tagger/head, parity-checked."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from clmr_embed.artifact import ENCODER_IO, HEAD_IO, TAGGER_IO, GraphIO, ModelInfo
from clmr_embed.atomic import atomic_path
from clmr_embed.constants import SAMPLE_RATE, WINDOW_SAMPLES
from clmr_embed.digest import file_sha256
from clmr_embed.errors import CheckpointError, ClmrEmbedError, ConfigError
from export.info import Provenance, Shape, model_info
from export.onnx import export_modules
from export.torchscript import export_torchscript
from export.verify import BATCHES, Artifact, ParityRow, check_parity
from training.checkpoint import Checkpoint
from training.cpc import CPCEncoder
from training.official import head_labels
from training.samplecnn import SampleCNN, Tagger, TaggerHead
from training.weights import load_checkpoint, load_head

UNSPECIFIED_LICENCE = "unspecified (pass --licence when exporting)"
Encoder = SampleCNN | CPCEncoder  # what a checkpoint's architecture rebuilds


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
    parts: tuple[Encoder | None, TaggerHead | None]  # what the ONNX file is built from
    example: torch.Tensor  # example input, batch 2
    io: GraphIO  # input/output names
    info: ModelInfo  # metadata of this part's files
    reference: nn.Module  # torch model the parity check runs (the tagger's serves the encoder)
    reference_io: GraphIO  # names of the reference's outputs


def run_export(config: ExportConfig) -> ExportReport:
    """Export a checkpoint's encoder (and tagger + head when there is a head), then check parity.

    Writes `<name>-encoder.onnx` (`audio` (batch, 1, window) float32 -> `embedding` (batch, D)),
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
    info = _info(config, name, ckpt, head_ckpt)
    head_sha = file_sha256(config.head) if config.head is not None else info.source_sha256
    parts = _parts(encoder, head, info, head_sha)
    files = [config.output_dir / f"{name}-{p.kind}{ext}" for p in parts for ext in (".onnx", ".pt")]
    _refuse_existing(files, config.force)
    rows = _write_checked(parts, files, config.batch_check)
    return ExportReport(tuple(files), tuple(rows), time.perf_counter() - start)


def _check_name(name: str) -> str:
    if not name or Path(name).name != name or name.startswith("."):
        raise ConfigError(f"export name {name!r} must be a plain file name prefix, e.g. 'clmr'")
    return name


def _modules(
    ckpt: Checkpoint, head_ckpt: Checkpoint | None, path: Path
) -> tuple[Encoder | None, TaggerHead | None]:
    encoder: Encoder | None = None
    head = None
    if ckpt.encoder_state is not None:
        encoder = _encoder(ckpt, head_ckpt, path)
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


def _encoder(ckpt: Checkpoint, head_ckpt: Checkpoint | None, path: Path) -> Encoder:
    """The untrained network the checkpoint's architecture names, in eval mode."""
    if ckpt.cpc_config is None:
        return SampleCNN(ckpt.encoder_config).eval()
    if head_ckpt is not None:
        raise CheckpointError(
            f"{path} holds a CPC encoder, which exports alone; drop the head (train linear "
            "composes a tagger from the encoder ONNX)"
        )
    return CPCEncoder(ckpt.cpc_config).eval()


def _info(
    config: ExportConfig, name: str, ckpt: Checkpoint, head_ckpt: Checkpoint | None
) -> ModelInfo:
    """The tagger's metadata; the encoder's and head's are derived from it in `_parts`."""
    head_cfg = head_ckpt.head_config if head_ckpt else None
    labels = (head_ckpt.labels or head_labels(head_cfg.n_labels)) if head_ckpt and head_cfg else []
    description = f"exported from {config.checkpoint.name} ({ckpt.source})"
    if config.head is not None and head_ckpt is not None:
        description += f"; head from {config.head.name} ({head_ckpt.source})"
    if config.description:
        description = f"{config.description} ({description})"
    enc = ckpt.cpc_config or ckpt.encoder_config
    width = head_cfg.in_dim if head_cfg else 0
    shape = Shape.of_encoder(enc) if enc else Shape(SAMPLE_RATE, WINDOW_SAMPLES, width)
    provenance = Provenance(
        # Not guessed from the key layout: an "official" layout does not make official weights.
        licence=config.licence or UNSPECIFIED_LICENCE,
        source_sha256=file_sha256(config.checkpoint),
        description=description,
        sources=(ckpt.source, *([head_ckpt.source] if head_ckpt else [])),
        step=ckpt.step,
        declared=ckpt.extra.get("trained"),  # the random-init baseline says False
        method=ckpt.method,
    )
    task = head_cfg.task if head_cfg else ""
    return model_info("tagger", name, shape, provenance, tuple(labels), task)


def _parts(
    encoder: Encoder | None, head: TaggerHead | None, info: ModelInfo, head_sha: str
) -> list[_Part]:
    parts = []
    if encoder is not None:
        audio = torch.zeros(2, 1, encoder.config.window_samples)  # batch 2: a dynamic batch
        plain = dataclasses.replace(info, kind="encoder", labels=(), task="")
        # With a head, the tagger's torch run also gives the encoder's expected embeddings.
        tagger = Tagger(encoder, head).eval() if head is not None else None
        ref, ref_io = (tagger, TAGGER_IO) if tagger is not None else (encoder, ENCODER_IO)
        alone = (encoder, None)
        parts.append(_Part("encoder", encoder, alone, audio, ENCODER_IO, plain, ref, ref_io))
        if tagger is not None and head is not None:
            both = (encoder, head)
            parts.append(_Part("tagger", tagger, both, audio, TAGGER_IO, info, tagger, TAGGER_IO))
    if head is not None:
        head_info = dataclasses.replace(info, kind="head", source_sha256=head_sha)
        example = torch.zeros(2, head.config.in_dim)
        only = (None, head)
        parts.append(_Part("head", head, only, example, HEAD_IO, head_info, head, HEAD_IO))
    return parts


def _refuse_existing(files: list[Path], force: bool) -> None:
    for path in files:
        if path.exists() and not force:
            raise OutputExistsError(f"{path} already exists; pass --force to overwrite it")


def _write_checked(
    parts: list[_Part], files: list[Path], batches: tuple[int, ...]
) -> list[ParityRow]:
    """Write every part to temp files beside its outputs, check parity, then publish them all.

    `files` holds each part's .onnx and .pt, in part order. If any part fails to export or
    disagrees with torch, every temp file is removed: nothing appears.
    """
    with contextlib.ExitStack() as stack:
        artifacts = []
        for part, onnx_file, script_file in zip(parts, files[::2], files[1::2], strict=True):
            onnx_tmp = stack.enter_context(atomic_path(onnx_file))
            script_tmp = stack.enter_context(atomic_path(script_file))
            export_modules(*part.parts, onnx_tmp, part.info)
            export_torchscript(part.module, part.example, script_tmp, part.info)
            artifacts += [
                _artifact(part, onnx_tmp, onnx_file),
                _artifact(part, script_tmp, script_file),
            ]
        return check_parity(artifacts, batches)


def _artifact(part: _Part, written: Path, output: Path) -> Artifact:
    shape = tuple(part.example.shape[1:])
    outputs = part.reference_io.outputs
    return Artifact(written, part.io, shape, part.reference, outputs, name=output.name)

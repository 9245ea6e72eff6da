"""clmr-embed's self-describing checkpoint format: saved atomically, read without key surgery."""

from __future__ import annotations

import dataclasses
import pickle
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from clmr_embed import __version__
from clmr_embed.artifact import ARCHITECTURES, METHODS
from clmr_embed.atomic import atomic_path
from clmr_embed.constants import CHECKPOINT_FORMAT
from clmr_embed.errors import CheckpointError
from training.config import (
    CPCConfig,
    EncoderConfig,
    HeadConfig,
    ProjectorConfig,
    config_from_dict,
    config_to_dict,
)

FORMAT_NAME = CHECKPOINT_FORMAT
FORMAT_VERSION = 1

StateDict = dict[str, torch.Tensor]


@dataclass
class Checkpoint:
    """Everything needed to rebuild, export or resume a model; every part is optional but one."""

    encoder_config: EncoderConfig | None = None  # SampleCNN shape, None for a head-only file
    encoder_state: StateDict | None = None  # unwrapped SampleCNN state dict (sequential.*), or
    #   with cpc_config the CPCEncoder's (conv.*, gru.*)
    projector_config: ProjectorConfig | None = None  # SimCLR projector shape, if trained/imported
    projector_state: StateDict | None = None  # projector state dict (0.weight, 2.weight)
    head_config: HeadConfig | None = None  # tagger/classifier head shape
    head_state: StateDict | None = None  # head state dict (0.*, 2.* for an MLP)
    labels: list[str] | None = None  # head output names, in order
    optimizer_state: dict[str, Any] | None = None  # optimiser state for --resume
    step: int = 0  # optimiser steps taken
    train_config: dict[str, Any] = field(default_factory=dict)  # the run's resolved config
    extra: dict[str, Any] = field(default_factory=dict)  # run state: scheduler, RNG, best loss...
    source: str = "clmr-embed"  # where the weights came from (e.g. "official CLMR v1 raw")
    cpc_config: CPCConfig | None = None  # set for a CPC encoder (encoder_config is then None)

    @property
    def architecture(self) -> str:
        """The encoder's network (clmr_embed.artifact.ARCHITECTURES): "cpc" or "samplecnn"."""
        return ARCHITECTURES[1] if self.cpc_config is not None else ARCHITECTURES[0]

    @property
    def method(self) -> str:
        """How the encoder was pre-trained: the run's config says; imported weights are SimCLR."""
        return str(self.train_config.get("method", METHODS[0]))


def save_checkpoint(path: Path, ckpt: Checkpoint) -> None:
    """Write `ckpt` to `path` atomically (clmr_embed.atomic: temp file, fsync, rename)."""
    payload = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "clmr_embed_version": __version__,
        "encoder_config": config_to_dict(ckpt.encoder_config) if ckpt.encoder_config else None,
        "encoder_state": ckpt.encoder_state,
        # the architecture is written out so readers without torch can tell (and refuse) CPC
        "architecture": ckpt.architecture,
        "cpc_config": config_to_dict(ckpt.cpc_config) if ckpt.cpc_config else None,
        "projector_config": (
            config_to_dict(ckpt.projector_config) if ckpt.projector_config else None
        ),
        "projector_state": ckpt.projector_state,
        "head_config": config_to_dict(ckpt.head_config) if ckpt.head_config else None,
        "head_state": ckpt.head_state,
        "labels": ckpt.labels,
        "optimizer_state": ckpt.optimizer_state,
        "step": ckpt.step,
        "train_config": ckpt.train_config,
        "extra": ckpt.extra,
        "source": ckpt.source,
    }
    with atomic_path(Path(path)) as tmp:  # the umask's mode, not mkstemp's private 0600
        torch.save(payload, tmp)


class _Stub(dict[str, Any]):
    """A pickled class whose package is missing (e.g. Lightning's AttributeDict), as a dict."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, dict):
            self.update(state)


class _LenientUnpickler(pickle.Unpickler):
    """Unpickler that maps classes of missing packages to `_Stub` instead of failing."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError):
            return _Stub


_lenient = types.SimpleNamespace(
    Unpickler=_LenientUnpickler, load=pickle.load, __name__="clmr_embed_lenient_pickle"
)


def read_torch_file(path: Path) -> Any:
    """torch.load with errors that name the file; tries weights_only first (safe), then full."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist; check the path")
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a folder; pass the .pt/.ckpt file inside it")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # any error: older files may pickle plain Python objects
        pass
    try:
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=_lenient)
    except Exception as exc:
        raise CheckpointError(
            f"{path} is not a torch checkpoint ({type(exc).__name__}: {str(exc)[:120]}); "
            "pass a clmr-embed or official CLMR .pt/.ckpt file"
        ) from None


def is_clmr_embed_payload(payload: Any) -> bool:
    """True for a dict written by `save_checkpoint`."""
    return isinstance(payload, dict) and payload.get("format") == FORMAT_NAME


def checkpoint_from_payload(payload: dict[str, Any], path: Path) -> Checkpoint:
    """Rebuild a Checkpoint from a `save_checkpoint` payload, checking the format version."""
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {version}; this clmr-embed reads "
            f"version {FORMAT_VERSION}; upgrade clmr-embed"
        )

    def _cfg(cls: type, key: str) -> Any:
        data = payload.get(key)
        return config_from_dict(cls, data) if data is not None else None

    return Checkpoint(
        encoder_config=_cfg(EncoderConfig, "encoder_config"),
        encoder_state=payload.get("encoder_state"),
        projector_config=_cfg(ProjectorConfig, "projector_config"),
        projector_state=payload.get("projector_state"),
        head_config=_cfg(HeadConfig, "head_config"),
        head_state=payload.get("head_state"),
        labels=payload.get("labels"),
        optimizer_state=payload.get("optimizer_state"),
        step=int(payload.get("step", 0)),
        train_config=payload.get("train_config") or {},
        extra=payload.get("extra") or {},
        source=payload.get("source", "clmr-embed"),
        cpc_config=_cfg(CPCConfig, "cpc_config"),
    )


def weights_only(ckpt: Checkpoint, **extra: Any) -> Checkpoint:
    """`ckpt` without its optimiser and RNG state: weights, configs, labels, step (~1/3 the size).

    What to commit or ship: enough to export, probe or start a new run (`init_weights`), not to
    resume one exactly. `extra` replaces the run state, e.g. with a note of where it came from.
    """
    return dataclasses.replace(ckpt, optimizer_state=None, extra=dict(extra))

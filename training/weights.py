"""Load any checkpoint (ours by its format tag, else an official CLMR layout) and its weights."""

from __future__ import annotations

from pathlib import Path

import torch

from clmr_embed.errors import CheckpointError
from training.checkpoint import (
    Checkpoint,
    checkpoint_from_payload,
    is_clmr_embed_payload,
    read_torch_file,
)
from training.official import head_labels, import_official


def load_checkpoint(path: Path) -> Checkpoint:
    """Load a clmr-embed checkpoint, or import an official CLMR layout (see training.official).

    Raises:
        CheckpointError: the file is missing, not a checkpoint, or of an unknown layout.
    """
    payload = read_torch_file(path)
    if is_clmr_embed_payload(payload):
        return checkpoint_from_payload(payload, Path(path))
    return import_official(payload, Path(path))


def load_weights(path: Path, encoder: torch.nn.Module, projector: torch.nn.Module | None) -> None:
    """Initialise `encoder` (and `projector`, when the file has one) from a checkpoint's weights.

    Raises:
        CheckpointError: the file has no encoder, or its shapes differ from the model's.
    """
    ckpt = load_checkpoint(path)
    if ckpt.encoder_state is None:
        raise CheckpointError(f"{path} holds no encoder weights; pass a pre-training checkpoint")
    pairs = [(encoder, ckpt.encoder_state, "encoder")]
    if projector is not None and ckpt.projector_state is not None:
        pairs.append((projector, ckpt.projector_state, "projector"))
    for module, state, part in pairs:
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[-1].strip()[:160]
            raise CheckpointError(
                f"{path}: its {part} does not fit this config ({first}); "
                "set encoder_channels/projection_* to the checkpoint's shape"
            ) from None


def load_head(path: Path) -> Checkpoint:
    """Load only the classifier head of a file (official finetuner head or any checkpoint).

    Raises:
        CheckpointError: the file is not a checkpoint or holds no head.
    """
    ckpt = load_checkpoint(path)
    if ckpt.head_state is None or ckpt.head_config is None:
        raise CheckpointError(
            f"{path} holds no classifier head; pass a head file such as finetuner_checkpoint_200.pt"
        )
    labels = ckpt.labels or head_labels(ckpt.head_config.n_labels)
    return Checkpoint(
        head_config=ckpt.head_config, head_state=ckpt.head_state, labels=labels, source=ckpt.source
    )

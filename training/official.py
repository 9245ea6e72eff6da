"""Official CLMR checkpoints as torch Checkpoints: the runtime's importer, tensors in and out.

The layouts and every key and shape check live in clmr_embed.official (torch-free, so the
runtime converts the release without torch); this module only moves tensors across.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from clmr_embed.errors import CheckpointError
from clmr_embed.official.weights import Arrays, import_weights
from clmr_embed.official.weights import head_labels as label_names
from training.checkpoint import Checkpoint, StateDict
from training.config import EncoderConfig, HeadConfig, ProjectorConfig
from training.samplecnn import Projector, SampleCNN, TaggerHead


def head_labels(n_labels: int) -> list[str]:
    """Names of a head's outputs: the MTAT top-50 order for 50 outputs, else label_0..n-1."""
    return list(label_names(n_labels))


def _as_arrays(value: Any) -> Any:
    """torch.load's payload with every tensor as a numpy array (bfloat16 widened)."""
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu()
        return (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).numpy()
    if isinstance(value, Mapping):
        return {key: _as_arrays(item) for key, item in value.items()}
    return value


def _state(module: nn.Module, arrays: Arrays, path: Path) -> StateDict:
    """Load checked arrays into `module`; its state dict (dtypes as the module's) is the result."""
    try:
        module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in arrays.items()})
    except RuntimeError as exc:  # surprises the importer's shape checks did not catch
        raise CheckpointError(f"{path}: cannot load {type(module).__name__}: {exc}") from None
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def import_official(payload: Any, path: Path) -> Checkpoint:
    """Recognise an official CLMR file's layout and import it with strict key and shape checks.

    Args:
        payload: what torch.load returned for `path`.
        path: the file, named in every error.

    Returns:
        A Checkpoint holding the parts the file has (encoder, projector, head) and its `source`.

    Raises:
        CheckpointError: not a dict of tensors, an unknown layout, or a missing, unexpected or
            misshapen key (the message names the file and the first such key).
    """
    path = Path(path)
    weights = import_weights(_as_arrays(payload), path)
    ckpt = Checkpoint(source=weights.source, step=weights.step, extra=weights.extra)
    if weights.encoder is not None:
        ckpt.encoder_config = EncoderConfig(channels=weights.channels)
        ckpt.encoder_state = _state(SampleCNN(ckpt.encoder_config), weights.encoder, path)
    if weights.projector is not None:
        in_dim, hidden, out = weights.projector_dims
        ckpt.projector_config = ProjectorConfig(in_dim=in_dim, hidden_dim=hidden, out_dim=out)
        ckpt.projector_state = _state(Projector(ckpt.projector_config), weights.projector, path)
    if weights.head is not None:
        in_dim, hidden, n_labels = weights.head_dims
        ckpt.head_config = HeadConfig(in_dim=in_dim, n_labels=n_labels, hidden_dim=hidden)
        ckpt.head_state = _state(TaggerHead(ckpt.head_config), weights.head, path)
        ckpt.labels = list(weights.labels)
    return ckpt

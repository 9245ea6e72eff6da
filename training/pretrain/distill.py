"""Knowledge distillation beside SimCLR: a small head regresses each crop's teacher target."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from clmr_embed.errors import ConfigError

HEADS = ("linear", "mlp")  # one linear layer, or one hidden layer (512, ReLU)


class DistillHead(nn.Sequential):
    """Student embedding (batch, in_dim) -> predicted standardised teacher target (batch, out_dim).

    Trained with the encoder and dropped at export: it only shapes the embedding during training.
    """

    def __init__(self, in_dim: int, out_dim: int, kind: str = "linear") -> None:
        if kind not in HEADS:
            raise ConfigError(f"teacher_head must be one of {list(HEADS)}, got {kind!r}")
        layers: list[nn.Module] = (
            [nn.Linear(in_dim, out_dim)]
            if kind == "linear"
            else [nn.Linear(in_dim, 512), nn.ReLU(), nn.Linear(512, out_dim)]
        )
        super().__init__(*layers)
        self.kind = kind


def distill_loss(predicted: Tensor, target: Tensor) -> Tensor:
    """Mean squared error over standardised targets, in float32.

    MSE rather than cosine: after per-dimension standardisation every teacher unit counts equally,
    and the magnitude of a max-pooled unit (how strongly the patch drives it) is part of what the
    student should learn; cosine would discard it.
    """
    return F.mse_loss(predicted.float(), target.float())


def masked_loss(predicted: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """distill_loss over the rows whose crop has a target (a partial target cache); 0 if none."""
    if not bool(mask.any()):
        return predicted.float().sum() * 0.0  # keeps the graph (and DDP) intact
    return distill_loss(predicted[mask], target[mask])

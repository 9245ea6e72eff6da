"""CLMR v1's CPC: strided Conv1d encoder + GRU autoregressor, per-step predictors, InfoNCE."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from clmr_embed.constants import CPC_FILTERS, CPC_PADDING, CPC_STRIDES
from training.config import CPCConfig


class CPCEncoder(nn.Module):
    """Raw audio -> z (conv features) -> c (GRU context); forward gives the embedding.

    forward((batch, 1, window)) -> (batch, context_dim): the time-mean of c, CLMR v1's
    n_features, with SampleCNN's signature so export and evaluation treat both alike.
    State dict keys: `conv.{2i}.*` (Conv1d i; ReLUs between) and `gru.*`.
    """

    def __init__(self, config: CPCConfig | None = None) -> None:
        super().__init__()
        self.config = config or CPCConfig()
        layers: list[nn.Module] = []
        width = 1
        for stride, size, pad in zip(CPC_STRIDES, CPC_FILTERS, CPC_PADDING, strict=True):
            layers += [nn.Conv1d(width, self.config.hidden_dim, size, stride, pad), nn.ReLU()]
            width = self.config.hidden_dim
        self.conv = nn.Sequential(*layers)
        for layer in layers:
            if isinstance(layer, nn.Conv1d):
                # He init, zero bias: torch's default init shrinks the raw waveform ~50x over the
                # seven ReLU stages, leaving z bias-dominated and InfoNCE flat for hundreds of steps
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
                nn.init.zeros_(layer.bias)  # type: ignore[arg-type]  # Conv1d has a bias here
        self.gru = nn.GRU(self.config.hidden_dim, self.config.context_dim, batch_first=True)

    def encode(self, audio: Tensor) -> tuple[Tensor, Tensor]:
        """(batch, 1, window) -> z (batch, frames, hidden_dim), c (batch, frames, context_dim)."""
        z = self.conv(audio).transpose(1, 2)
        c, _ = self.gru(z)
        return z, c

    def forward(self, audio: Tensor) -> Tensor:
        return self.encode(audio)[1].mean(dim=1)


class CPC(nn.Module):
    """Encoder + one Linear(context_dim, hidden_dim) per prediction step.

    forward(x) -> (z [B, T, H], predictions [K, B, T, H]): prediction k-1 at t is W_k c_t, which
    InfoNCE scores against z at t+k. The predictors run inside forward so DDP synchronises them.
    `projector` is where checkpoints keep the predictors (the training-only head, like SimCLR's).
    """

    def __init__(self, encoder: CPCEncoder) -> None:
        super().__init__()
        cfg = encoder.config
        self.encoder = encoder
        self.projector = nn.ModuleList(
            nn.Linear(cfg.context_dim, cfg.hidden_dim) for _ in range(cfg.prediction_steps)
        )
        self.distill: nn.Module | None = None  # CPC trains without a teacher

    def forward(self, audio: Tensor) -> tuple[Tensor, Tensor]:
        z, c = self.encoder.encode(audio)
        return z, torch.stack([w(c) for w in self.projector])


def info_nce(
    z: Tensor, predictions: Tensor, pool: Tensor, picked: Tensor, offset: int = 0
) -> Tensor:
    """CPC's InfoNCE, averaged over positions and prediction steps.

    For step k, the anchor (b, t) scores its positive z[b, t+k] against the negatives
    `pool[picked[k-1]]`: rows of the whole batch's z (other positions, other examples), drawn
    once per step for all its anchors, so the scores are one matmul. A drawn row that is the
    anchor's own positive is masked out.

    Args:
        z: [B, T, H] this process's conv features (the targets).
        predictions: [K, B, T, H] W_k c_t for every step k and position t.
        pool: [P, H] candidate negatives: the batch's z flattened (every rank's under DDP).
        picked: [K, M] int64 rows of `pool`, the negatives of each step.
        offset: the row of z[0, 0] in `pool` (rank x B x T under DDP, else 0).

    Returns:
        Scalar loss.
    """
    batch, frames, width = z.shape
    losses = []
    for k in range(1, predictions.shape[0] + 1):
        anchors = predictions[k - 1, :, : frames - k].reshape(-1, width)
        positives = z[:, k:].reshape(-1, width)
        negatives = anchors @ pool[picked[k - 1]].T  # [N, M]
        rows = torch.arange(batch, device=z.device)[:, None] * frames
        own = (offset + rows + torch.arange(k, frames, device=z.device)).reshape(-1)
        negatives = negatives.masked_fill(own[:, None] == picked[k - 1][None, :], float("-inf"))
        logits = torch.cat([(anchors * positives).sum(1, keepdim=True), negatives], dim=1)
        target = torch.zeros(len(logits), dtype=torch.long, device=z.device)
        losses.append(F.cross_entropy(logits, target))
    return torch.stack(losses).mean()

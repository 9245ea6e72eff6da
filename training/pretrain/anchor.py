"""The anchor: a frozen copy of the starting encoder whose embeddings the student must stay near."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from training.config import EncoderConfig
from training.layout import choose_layout
from training.pretrain.config import PretrainConfig
from training.samplecnn import SampleCNN
from training.weights import load_weights


class Anchor(nn.Module):
    """init_weights' encoder, frozen: weights, and BatchNorm statistics that never move.

    Fine-tuning the shipped candidate toward the whole corpus's teacher targets gains genre but
    loses same-track retrieval (docs/models.md, Round 3); the anchor term keeps each crop's
    embedding near the one the candidate gives it, so the new targets can only add to it. It
    normalises with the batch's statistics, as the student does in training, so at the first
    step the two agree exactly (under DDP: with this rank's rows, where the student's BatchNorm
    is global, so they agree to the batch-statistics noise).
    """

    def __init__(self, encoder: SampleCNN) -> None:
        super().__init__()
        self.encoder = encoder.requires_grad_(False)
        for module in encoder.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.momentum = 0.0  # batch statistics in the forward, running ones kept

    @torch.no_grad()
    def forward(self, x: Tensor) -> Tensor:
        """x [B, 1, window] -> the starting encoder's embeddings [B, dim]."""
        return self.encoder(x)  # type: ignore[no-any-return]


def build_anchor(config: PretrainConfig, device: torch.device) -> Anchor | None:
    """The anchor of a run with anchor_weight > 0 (from init_weights, also on resume), else None."""
    if config.anchor_weight == 0:
        return None
    encoder = SampleCNN(EncoderConfig(channels=tuple(config.encoder_channels)))
    load_weights(Path(config.init_weights), encoder, None)
    encoder.layout = choose_layout(config.encoder_layout, device, config.precision)
    return Anchor(encoder.to(device))


def anchor_loss(embedding: Tensor, anchored: Tensor) -> Tensor:
    """Squared distance of the embeddings to the anchor's, relative to the anchor batch's spread.

    0 when nothing moved, 1 when the error is as large as the anchor's own variance across the
    batch: a scale-free figure, so one anchor_weight means the same for any encoder, and it
    tolerates what retrieval ignores only in proportion (a shared offset still counts).
    """
    embedding, anchored = embedding.float(), anchored.float()
    spread = (anchored - anchored.mean(dim=0)).pow(2).sum().clamp_min(1e-12)
    return (embedding - anchored).pow(2).sum() / spread

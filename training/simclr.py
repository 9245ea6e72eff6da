"""SimCLR for CLMR: the NT-Xent loss as a pure function and the encoder + projector module."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from clmr_embed.errors import ConfigError
from training.config import ProjectorConfig
from training.samplecnn import Projector, SampleCNN


def nt_xent_loss(
    z_i: Tensor, z_j: Tensor, temperature: float = 0.5, same_group: Tensor | None = None
) -> Tensor:
    """SimCLR's NT-Xent (normalised temperature-scaled cross entropy), as Spijkervet/SimCLR.

    With z = cat(z_i, z_j) [2N, d] and s = cos(z_a, z_b) / temperature, anchor a's positive is
    a +- N and its negatives are the other 2N - 2 rows; loss = sum_a CE(s_a, positive) / 2N.

    Args:
        z_i: [N, d] projections of the first views (any scale: cosine similarity normalises).
        z_j: [N, d] projections of the second views, row k pairs with z_i[k].
        temperature: tau (CLMR: 0.5).
        same_group: optional [N] integer ids (e.g. track ids); rows with equal ids are removed
            from each other's negatives (both views), so clips of one track do not repel.
            The positive is always kept.

    Returns:
        Scalar loss (dtype of z).

    Raises:
        ConfigError: mismatched shapes or a non-positive temperature.
    """
    if z_i.shape != z_j.shape or z_i.dim() != 2:
        shapes = f"{tuple(z_i.shape)} and {tuple(z_j.shape)}"
        raise ConfigError(f"z_i and z_j must both be [N, d] of one shape, got {shapes}")
    if temperature <= 0:
        raise ConfigError(f"temperature must be > 0, got {temperature}")
    n = z_i.shape[0]
    z = F.normalize(torch.cat([z_i, z_j]), dim=1)
    logits = z @ z.T / temperature
    rows = torch.arange(2 * n, device=z.device)
    positive = (rows + n) % (2 * n)
    excluded = rows[:, None] == rows[None, :]
    if same_group is not None:
        if same_group.shape != (n,):
            shape = tuple(same_group.shape)
            raise ConfigError(f"same_group must hold N={n} ids, shape ({n},), got {shape}")
        groups = torch.cat([same_group, same_group]).to(z.device)
        excluded = excluded | (groups[:, None] == groups[None, :])
        excluded[rows, positive] = False
    # -inf removes an entry from the softmax denominator, exactly as leaving it out of the logits.
    logits = logits.masked_fill(excluded, float("-inf"))
    return F.cross_entropy(logits, positive, reduction="sum") / (2 * n)


class SimCLR(nn.Module):
    """Encoder + projector. forward(x_i, x_j) -> (h_i, h_j, z_i, z_j).

    Each view goes through the encoder separately, as in CLMR/SimCLR, so BatchNorm statistics are
    per view.
    """

    def __init__(self, encoder: SampleCNN, projector: Projector | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.projector = projector or Projector(
            ProjectorConfig(in_dim=encoder.config.embedding_dim)
        )

    def forward(self, x_i: Tensor, x_j: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Args: x_i, x_j [B, 1, 59049] float32. Returns h [B, D] and z [B, out_dim] per view."""
        h_i, h_j = self.encoder(x_i), self.encoder(x_j)
        return h_i, h_j, self.projector(h_i), self.projector(h_j)


__all__ = ["SimCLR", "nt_xent_loss"]

"""SimCLR for CLMR (encoder + projector, NT-Xent, over all ranks); CPC InfoNCE over all ranks."""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from clmr_embed.errors import ConfigError
from training.config import ProjectorConfig
from training.cpc import info_nce
from training.pretrain.distributed import is_distributed, rank, world_size
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
        excluded = excluded | _same_group(same_group, n, z.device)
        excluded[rows, positive] = False
    # -inf removes an entry from the softmax denominator, exactly as leaving it out of the logits.
    logits = logits.masked_fill(excluded, float("-inf"))
    return F.cross_entropy(logits, positive, reduction="sum") / (2 * n)


def _same_group(ids: Tensor, n: int, device: torch.device) -> Tensor:
    """[2N, 2N] True where two rows (of either view) come from the same group."""
    if ids.shape != (n,):
        raise ConfigError(f"same_group must hold N={n} ids, shape ({n},), got {tuple(ids.shape)}")
    groups = torch.cat([ids, ids]).to(device)
    return groups[:, None] == groups[None, :]


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward sums every rank's gradient and returns this rank's slice.

    SimCLR v1's GatherLayer returned only the local gradient; summing is what makes the gradient
    of a loss computed on the gathered tensor by every rank come out right (see global_nt_xent).
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad.chunk(dist.get_world_size())[dist.get_rank()]


def gather_with_grad(x: Tensor) -> Tensor:
    """Concatenate every rank's x [n, ...] in rank order -> [world * n, ...], keeping gradients.

    Every rank must pass the same shape. Identity when not distributed.
    """
    if not is_distributed():
        return x
    gathered: Tensor = _GatherWithGrad.apply(x)  # type: ignore[no-untyped-call]
    return gathered


def _gather_ids(ids: Tensor) -> Tensor:
    parts = [torch.empty_like(ids) for _ in range(world_size())]
    dist.all_gather(parts, ids.contiguous())
    return torch.cat(parts)


def global_nt_xent(
    z_i: Tensor, z_j: Tensor, temperature: float = 0.5, same_group: Tensor | None = None
) -> Tensor:
    """NT-Xent over the global batch: every rank's pairs are every rank's negatives.

    Each rank gathers both views and computes the same global loss L (the single-process loss on
    the concatenated batch). Scaling: backward through `gather_with_grad` sums the W ranks'
    identical dL/dz, so each rank's local gradient is W x dL/dz_local; DDP then averages parameter
    gradients over the W ranks, which cancels the factor W, so the parameter gradient equals the
    single-process gradient on the whole batch exactly. (Without DDP averaging, divide by W.)

    Args:
        z_i, z_j: [n, d] local projections; every rank passes the same n.
        temperature: tau.
        same_group: optional [n] track ids (global ids, e.g. dataset indices), see nt_xent_loss.

    Returns:
        Scalar global loss, equal on every rank.
    """
    if not is_distributed():
        return nt_xent_loss(z_i, z_j, temperature, same_group)
    groups = None if same_group is None else _gather_ids(same_group)
    return nt_xent_loss(gather_with_grad(z_i), gather_with_grad(z_j), temperature, groups)


def global_info_nce(
    z: Tensor, predictions: Tensor, negatives: int, generator: torch.Generator
) -> Tensor:
    """CPC's InfoNCE with negatives drawn from every rank's z (training.cpc.info_nce).

    Each rank scores its own anchors; DDP's gradient averaging then gives the gradient of the
    mean of the ranks' losses (gather_with_grad sums the gradient reaching each rank's z).

    Args:
        z: [B, T, H] local conv features; every rank passes the same shape.
        predictions: [K, B, T, H] local predictions W_k c_t.
        negatives: negatives per prediction step, drawn from all B x T x world rows.
        generator: on z's device, seeded per (step, rank): the draw is reproducible on resume.
    """
    pool = gather_with_grad(z.reshape(-1, z.shape[2]))
    offset = rank() * z.shape[0] * z.shape[1]  # where this rank's rows start in the pool
    shape = (predictions.shape[0], negatives)
    picked = torch.randint(len(pool), shape, generator=generator, device=z.device)
    return info_nce(z, predictions, pool, picked, offset)


class SimCLR(nn.Module):
    """Encoder + projector (+ an optional distillation head).

    forward(x_i, x_j) -> (h_i, h_j, z_i, z_j), and with a distillation head also its predictions
    (p_i, p_j): computed inside forward, so DDP synchronises the head like the rest. Each view
    goes through the encoder separately, as in CLMR/SimCLR, so BatchNorm statistics are per view.
    """

    def __init__(
        self,
        encoder: SampleCNN,
        projector: Projector | None = None,
        distill: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.projector = projector or Projector(
            ProjectorConfig(in_dim=encoder.config.embedding_dim)
        )
        self.distill = distill  # embedding -> teacher target (training.pretrain.distill)

    def forward(self, x_i: Tensor, x_j: Tensor) -> tuple[Tensor, ...]:
        """Args: x_i, x_j [B, 1, 59049] float32. Returns h [B, D] and z [B, out_dim] per view,
        then p [B, target_dim] per view when there is a distillation head."""
        h_i, h_j = self.encoder(x_i), self.encoder(x_j)
        out = (h_i, h_j, self.projector(h_i), self.projector(h_j))
        if self.distill is None:
            return out
        return (*out, self.distill(h_i), self.distill(h_j))

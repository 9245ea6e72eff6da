"""torch.distributed helpers: torchrun setup, rank queries, and NT-Xent over the global batch."""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch
import torch.distributed as dist
from torch import Tensor

from clmr_embed.errors import ConfigError
from training.simclr import nt_xent_loss


def is_distributed() -> bool:
    """True inside an initialised process group of more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's global rank (0 when not distributed)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    """Number of ranks (1 when not distributed)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main() -> bool:
    """True on rank 0, the rank that logs and writes checkpoints."""
    return rank() == 0


def setup_from_env(
    backend: str | None = None, env: Mapping[str, str] | None = None
) -> tuple[int, int, int]:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_*).

    Without WORLD_SIZE > 1 nothing is initialised (a plain `python` run). With nccl the CUDA device
    is set to LOCAL_RANK.

    Args:
        backend: "nccl", "gloo", ...; None picks nccl with CUDA, else gloo.
        env: the variables to read; None reads os.environ (torchrun's contract).

    Returns:
        (rank, world_size, local_rank).

    Raises:
        ConfigError: WORLD_SIZE > 1 but RANK/LOCAL_RANK are missing or not integers.
    """
    env = os.environ if env is None else env
    world = int(env.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, 0
    try:
        global_rank, local_rank = int(env["RANK"]), int(env.get("LOCAL_RANK", env["RANK"]))
    except (KeyError, ValueError):
        raise ConfigError(
            f"WORLD_SIZE={world} but RANK/LOCAL_RANK are missing or not integers; use torchrun"
        ) from None
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend, rank=global_rank, world_size=world)
    return global_rank, world, local_rank


def teardown() -> None:
    """Leave the process group if one was initialised."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward sums every rank's gradient and returns this rank's slice.

    SimCLR v1's GatherLayer returned only the local gradient; summing is what makes the gradient
    of a loss computed on the gathered tensor by every rank come out right (see global_nt_xent).
    """

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad.chunk(dist.get_world_size())[dist.get_rank()]


def gather_with_grad(x: Tensor) -> Tensor:
    """Concatenate every rank's x [n, ...] in rank order -> [world * n, ...], keeping gradients.

    Every rank must pass the same shape. Identity when not distributed.
    """
    return _GatherWithGrad.apply(x) if is_distributed() else x


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


__all__ = [
    "gather_with_grad",
    "global_nt_xent",
    "is_distributed",
    "is_main",
    "rank",
    "setup_from_env",
    "teardown",
    "world_size",
]

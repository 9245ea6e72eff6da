"""Processes of a run: torchrun setup and teardown, the device, rank queries, a barrier."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.distributed as dist

from clmr_embed.errors import ConfigError


@dataclass(frozen=True)
class Processes:
    """This process's place in the run: one process alone, or one of torchrun's (one per GPU)."""

    rank: int  # global rank; rank 0 decodes the cache, logs and writes checkpoints
    world: int  # number of processes
    local_rank: int  # rank on this machine: the CUDA device index
    device: torch.device  # where this process trains

    @property
    def main(self) -> bool:
        """True on rank 0."""
        return self.rank == 0


def start_processes(device: str, precision: str) -> Processes:
    """Join the torchrun process group if any (nccl on CUDA, gloo on CPU); pick the device.

    Args:
        device: "auto" (CUDA when available), "cpu" or "cuda".
        precision: "fp32", "bf16" or "fp16" (fp16 needs CUDA's GradScaler).

    Raises:
        ConfigError: CUDA asked for but absent, fp16 without CUDA, or a broken torchrun env.
    """
    cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if cuda and not torch.cuda.is_available():
        raise ConfigError("device = 'cuda' but torch sees no CUDA device; use 'auto' or 'cpu'")
    if precision == "fp16" and not cuda:
        raise ConfigError("precision 'fp16' needs CUDA (GradScaler); use 'bf16' on CPU")
    global_rank, world, local_rank = setup_from_env("nccl" if cuda else "gloo")
    where = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(where)
    return Processes(global_rank, world, local_rank, where)


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


def barrier() -> None:
    """Wait for every rank (nothing to wait for outside a process group)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


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

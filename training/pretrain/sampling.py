"""Which items each training step sees: seeds, epoch permutations, the batch sampler, the loader."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from clmr_embed.errors import DataError
from training.pretrain.config import PretrainConfig
from training.pretrain.distributed import Processes
from training.pretrain.targets import TeacherTargets


def step_seed(seed: int, *parts: int | str) -> int:
    """A 63-bit seed derived from the run seed and e.g. (step, rank, "crop"): no stored RNG state.

    Every random draw of a training step comes from a generator seeded this way, so step k's
    batch and augmentations are the same whether the run was resumed or not.
    """
    text = ":".join(str(p) for p in (seed, *parts))
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little") >> 1


def epoch_slice(count: int, steps_per_epoch: int, step: int, seed: int) -> torch.Tensor:
    """Item indices of global step `step`'s batch: epoch e visits `count` items in a seeded
    permutation, `count // steps_per_epoch` items a step (a DistributedSampler without state)."""
    epoch, position = divmod(step, steps_per_epoch)
    size = count // steps_per_epoch
    return _epoch_order(count, seed, epoch)[position * size : (position + 1) * size]


@functools.lru_cache(maxsize=2)  # the current epoch (and the next, at a boundary)
def _epoch_order(count: int, seed: int, epoch: int) -> torch.Tensor:
    order = torch.Generator().manual_seed(step_seed(seed, "order", epoch))
    return torch.randperm(count, generator=order)


class StepDataset(Dataset[dict[str, torch.Tensor]]):
    """A map-style data set whose batches are a pure function of the step: its items are keyed
    by what keys_for_step returns (CropPairs, GridCrops)."""

    targets: TeacherTargets | None = None  # the teacher targets its items carry, if any

    def steps_per_epoch(self, global_batch: int) -> int:
        """Full global batches per pass over the items (the remainder is dropped, as CLMR does).

        Raises:
            DataError: fewer items than one global batch (`shortage` names them and the fix).
        """
        if len(self) < global_batch:
            raise DataError(f"{self.shortage(len(self))} {global_batch}; {self.remedy}")
        return len(self) // global_batch

    remedy = ""  # the fix named when the items are fewer than one global batch

    def shortage(self, count: int) -> str:
        """Start of the too-few-items message, ending before the global batch size."""
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    def keys_for_step(
        self, step: int, seed: int, batch_size: int, rank: int = 0, world: int = 1
    ) -> list[Any]:
        """This rank's `batch_size` item keys of global step `step`."""
        raise NotImplementedError


class StepBatchSampler(Sampler[list[Any]]):
    """DataLoader `batch_sampler` yielding this rank's keys for steps `first_step..last_step - 1`.

    Starting at a resumed step gives exactly the batches the uninterrupted run would have seen.
    """

    def __init__(
        self,
        pairs: StepDataset,
        steps: range,
        seed: int,
        batch_size: int,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        self.pairs, self.steps, self.seed = pairs, steps, seed
        self.batch_size, self.rank, self.world = batch_size, rank, world

    def __iter__(self) -> Iterator[list[Any]]:
        for step in self.steps:
            yield self.pairs.keys_for_step(step, self.seed, self.batch_size, self.rank, self.world)

    def __len__(self) -> int:
        return len(self.steps)


def make_loader(
    items: StepDataset, steps: range, config: PretrainConfig, processes: Processes
) -> DataLoader[dict[str, torch.Tensor]]:
    """Batches of `steps`, this rank's slice; workers read the memory-mapped cache."""
    sampler = StepBatchSampler(
        items, steps, config.seed, config.batch_size, processes.rank, processes.world
    )
    return DataLoader(
        items,
        batch_sampler=sampler,
        num_workers=config.workers,
        pin_memory=processes.device.type == "cuda",
        persistent_workers=config.workers > 0,
    )

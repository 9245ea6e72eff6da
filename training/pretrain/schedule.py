"""The learning-rate schedule as a pure function of the step: linear warm-up, then cosine."""

from __future__ import annotations

import math

from clmr_embed.errors import ConfigError

SCHEDULES = ("cosine", "constant")


def lr_at(
    step: int,
    base_lr: float,
    warmup_steps: int,
    total_steps: int,
    schedule: str = "cosine",
    min_lr_ratio: float = 0.0,
) -> float:
    """Learning rate for optimiser step `step` (0-based).

    Warm-up rises linearly to `base_lr`, reaching it at step `warmup_steps - 1` (step 0 already
    trains, at base_lr / warmup_steps). "cosine" then decays from `base_lr` to
    `base_lr * min_lr_ratio`, reached at the last step `total_steps - 1`; "constant" stays at
    `base_lr` (CLMR v2's Adam). Steps past the end stay at the floor.

    Args:
        step: optimiser steps already taken.
        base_lr: peak learning rate.
        warmup_steps: length of the linear warm-up (0: none).
        total_steps: steps of the whole run, warm-up included.
        schedule: "cosine" or "constant".
        min_lr_ratio: cosine floor as a fraction of base_lr.

    Raises:
        ConfigError: for an unknown schedule.
    """
    if schedule not in SCHEDULES:
        raise ConfigError(f"schedule {schedule!r} is unknown; use one of {list(SCHEDULES)}")
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    if schedule == "constant":
        return base_lr
    decay_steps = max(1, total_steps - 1 - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    floor = base_lr * min_lr_ratio
    return floor + (base_lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


__all__ = ["SCHEDULES", "lr_at"]

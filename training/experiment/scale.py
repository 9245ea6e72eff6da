"""`--scale small` and `--scale tiny`: every cell shrunk, what varies between cells kept ordered."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from training.linear.config import LinearEvalConfig
from training.pretrain.cache import resolve_inputs
from training.pretrain.config import PretrainConfig

SCALES = ("full", "small", "tiny")
# small: the real encoder, corpus and probe, a tenth of the steps and an eighth of the batch, so a
# shipped spec runs in <= 30 minutes on a 2-core CPU (docs/experiments/: what that can show)
SMALL_STEP_DIVISOR = 10  # 1200 -> 120 (CPU recipe); 3000 / 1000 / 300 -> 200 (capped) / 100 / 30
SMALL_MAX_STEPS = 200  # the longest small cell: 2 min at batch 8, 16 at batch 57 (2 cores)
SMALL_BATCH_DIVISOR = 8  # 456 / 96 / 48 -> 57 / 12 / 8 (floored): batch-size cells stay ordered
SMALL_MIN_BATCH = 8  # below 8 pairs NT-Xent has too few negatives to learn anything
TINY_CHANNELS = (8, 8, 8, 16, 16, 16, 16, 16, 16, 32, 32)  # the narrowest SampleCNN the tests use
BATCH_DIVISOR = 16  # 48 / 96 / 456 -> 3 / 6 / 29: batch-size cells stay distinct and ordered
STEP_DIVISOR = 100  # 300 / 1000 / 3000 steps -> 3 / 10 / 30 (capped): duration cells stay ordered
MAX_TINY_STEPS = 20  # a tiny cell pre-trains for seconds on a laptop CPU
TINY_EPOCH_STEPS = 4  # cells that train by epochs get this many steps
TINY_FILES = 8  # pre-training files kept per corpus, evenly spread over its sorted list
TINY_SEGMENT_SECONDS = 10.0  # short segments, so a few files fill even the largest tiny batch
TINY_PROBE_EPOCHS = 50  # linear heads on tiny features converge fast; bound the worst case


def tiny_pretrain(config: PretrainConfig) -> PretrainConfig:
    """The cell's pre-training config at tiny scale (what varies between cells stays ordered)."""
    steps = config.max_steps // STEP_DIVISOR if config.max_steps else TINY_EPOCH_STEPS
    steps = max(2, min(MAX_TINY_STEPS, steps))
    return dataclasses.replace(
        config,
        encoder_channels=TINY_CHANNELS,
        projection_hidden_dim=32,
        projection_dim=16,
        cpc_hidden_dim=32,  # CPC cells: narrow conv features and context, fewer negatives
        cpc_context_dim=16,
        cpc_negatives=min(config.cpc_negatives, 32),
        batch_size=max(2, math.ceil(config.batch_size / BATCH_DIVISOR)),
        segment_seconds=min(config.segment_seconds, TINY_SEGMENT_SECONDS),
        max_steps=steps,
        stop_at_step=0,
        warmup_steps=min(config.warmup_steps, 1),
        checkpoint_every=max(1, steps // 2),  # a killed tiny cell still resumes mid-way
        log_every=1,
        workers=0,
        device="cpu",
        compile=False,
    )


def small_pretrain(config: PretrainConfig) -> PretrainConfig:
    """The cell's pre-training config at small scale: full width, fewer steps, smaller batches."""
    steps = config.max_steps // SMALL_STEP_DIVISOR if config.max_steps else SMALL_MAX_STEPS
    steps = max(5, min(SMALL_MAX_STEPS, steps))
    return dataclasses.replace(
        config,
        batch_size=max(SMALL_MIN_BATCH, config.batch_size // SMALL_BATCH_DIVISOR),
        max_steps=steps,
        epochs=0,
        stop_at_step=0,
        warmup_steps=min(config.warmup_steps, steps // 10),
        checkpoint_every=max(1, steps // 4),  # a killed cell loses at most a quarter
        log_every=5,  # the spec's device stays: small is a size, not a machine
    )


def scaled_pretrain(config: PretrainConfig, scale: str) -> PretrainConfig:
    """`config` at `scale` (one of SCALES)."""
    if scale == "tiny":
        return tiny_pretrain(config)
    return small_pretrain(config) if scale == "small" else config


def tiny_probe(config: LinearEvalConfig) -> LinearEvalConfig:
    """The probe at tiny scale: fewer epochs at most (the probe set itself is kept whole)."""
    return dataclasses.replace(config, max_epochs=min(config.max_epochs, TINY_PROBE_EPOCHS))


def tiny_files(inputs: tuple[Path, ...]) -> tuple[Path, ...]:
    """At most TINY_FILES audio files of the corpus, evenly spread (not just its first folder)."""
    files = resolve_inputs(list(inputs))
    if len(files) <= TINY_FILES:
        return tuple(files)
    step = len(files) / TINY_FILES
    return tuple(files[int(k * step)] for k in range(TINY_FILES))

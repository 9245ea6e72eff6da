"""`run_pretrain`: CLMR/SimCLR pre-training from audio folders to latest.pt, read top to bottom."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from clmr_embed.constants import SAMPLE_RATE
from training.pretrain.augment import AugmentChain
from training.pretrain.cache import AudioCache, SkippedFile, build_cache
from training.pretrain.config import PretrainConfig, write_config
from training.pretrain.data import CropPairs, make_loader
from training.pretrain.distributed import Processes, barrier, start_processes, teardown
from training.pretrain.loop import Loop, run_steps
from training.pretrain.metrics_log import MetricsLog
from training.pretrain.parts import build_parts
from training.pretrain.schedule import lr_at
from training.pretrain.state import BEST, LATEST


@dataclass(frozen=True)
class PretrainResult:
    """What `run_pretrain` produced."""

    checkpoint: Path  # output_dir/latest.pt
    best_checkpoint: Path  # output_dir/best.pt (lowest smoothed loss)
    steps: int  # optimiser steps taken in total (resumed runs included)
    first_loss: float  # loss at step 0 of the run (of the original run when resumed)
    final_loss: float  # mean loss of the last logged interval
    wall_seconds: float  # wall time of this call
    skipped: tuple[SkippedFile, ...]  # input files left out (too short, undecodable)


def run_pretrain(
    config: PretrainConfig,
    data: list[Path],
    output_dir: Path,
    resume: bool = False,
    *,
    progress: bool = True,
) -> PretrainResult:
    """Pre-train SimCLR(SampleCNN + projector) on `data`; under torchrun, one process per GPU.

    Args:
        config: the run's settings.
        data: folders, audio files or manifests (see training.pretrain.cache.build_cache).
        output_dir: receives latest.pt, best.pt, config.toml, metrics.jsonl, loss.png.
        resume: continue from output_dir/latest.pt; the weights after N steps then equal those
            of an uninterrupted run.
        progress: tqdm bars on stderr (rank 0 only).

    Raises:
        ConfigError, DataError, CheckpointError: bad settings, data or resume state.
    """
    started = time.perf_counter()
    output_dir = Path(output_dir)
    processes = start_processes(config.device, config.precision)
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    cache, skipped = prepare_cache(config, data, processes, progress)
    pairs = CropPairs(cache, segment_samples=round(config.segment_seconds * SAMPLE_RATE))
    loop = build_loop(config, pairs, output_dir, resume, processes, progress)
    if processes.main:
        write_config(output_dir / "config.toml", config)
    steps = range(loop.parts.state.step, loop.end_step)
    run_steps(loop, make_loader(pairs, steps, config, processes))
    loop.log.close()
    teardown()
    state = loop.parts.state
    return PretrainResult(
        checkpoint=output_dir / LATEST,
        best_checkpoint=output_dir / BEST,
        steps=state.step,
        first_loss=state.first_loss,
        final_loss=state.last_loss,
        wall_seconds=time.perf_counter() - started,
        skipped=skipped,
    )


def prepare_cache(
    config: PretrainConfig, data: list[Path], processes: Processes, progress: bool
) -> tuple[AudioCache, tuple[SkippedFile, ...]]:
    """Rank 0 decodes the corpus; the other ranks wait, then open the same cache."""

    def build() -> tuple[AudioCache, tuple[SkippedFile, ...]]:
        cache, summary = build_cache(
            data,
            SAMPLE_RATE,
            cache_root=Path(config.cache_dir) if config.cache_dir else None,
            allow_probe_sets=config.allow_probe_sets,
            progress=progress and processes.main,
        )
        return cache, summary.skipped

    if processes.main:
        result = build()
    barrier()
    return result if processes.main else build()


def build_loop(
    config: PretrainConfig,
    pairs: CropPairs,
    output_dir: Path,
    resume: bool,
    processes: Processes,
    progress: bool,
) -> Loop:
    """The model (restored when resuming), augmentations, schedule and log the loop runs with."""
    total_steps = config.max_steps or config.epochs * pairs.steps_per_epoch(
        config.batch_size * processes.world
    )
    parts = build_parts(config, output_dir, resume, processes)
    schedule = functools.partial(
        lr_at,
        base_lr=config.lr,
        warmup_steps=config.warmup_steps,
        total_steps=total_steps,
        schedule=config.schedule,
        min_lr_ratio=config.min_lr_ratio,
    )
    log = MetricsLog(
        output_dir,
        parts.state.step,
        total_steps,
        enabled=processes.main and progress,
        write=processes.main,
        wall_offset=parts.state.wall_seconds,
    )
    return Loop(
        config=config,
        processes=processes,
        parts=parts,
        augment=AugmentChain(config.augment, SAMPLE_RATE).to(processes.device),
        schedule=schedule,
        log=log,
        output_dir=output_dir,
        end_step=min(total_steps, config.stop_at_step or total_steps),
    )

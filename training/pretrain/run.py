"""`run_pretrain`: CLMR/SimCLR pre-training from audio folders to latest.pt, read top to bottom."""

from __future__ import annotations

import dataclasses
import functools
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from clmr_embed.constants import SAMPLE_RATE, WINDOW_SAMPLES
from clmr_embed.errors import ConfigError, DataError
from training.layout import cpu_precision
from training.pretrain.anchor import build_anchor
from training.pretrain.augment import AugmentChain
from training.pretrain.cache import AudioCache, SkippedFile, build_cache
from training.pretrain.config import PretrainConfig, write_config
from training.pretrain.crops import GridCrops, validation_tracks
from training.pretrain.data import CropPairs
from training.pretrain.distributed import Processes, barrier, start_processes, teardown
from training.pretrain.loop import Batch, Loop, run_steps
from training.pretrain.metrics_log import MetricsLog
from training.pretrain.parts import build_parts
from training.pretrain.sampling import StepDataset, make_loader
from training.pretrain.schedule import lr_at
from training.pretrain.shards import audio_folders, install_targets, is_shard
from training.pretrain.state import BEST, LATEST
from training.pretrain.targets import GridSpec, TargetJob, TeacherTargets, build_targets


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
    precision, why = cpu_precision(config.precision, processes.device)
    if why:
        warnings.warn(why, stacklevel=2)
        config = dataclasses.replace(config, precision=precision)  # config.toml says what ran
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    cache, skipped = prepare_cache(config, data, processes, progress)
    targets = prepare_targets(config, cache, processes, progress) if config.teacher else None
    items = training_items(config, cache, targets)
    loop = build_loop(config, items, output_dir, resume, processes, progress)
    if processes.main:
        write_config(output_dir / "config.toml", config)
    steps = range(loop.parts.state.step, loop.end_step)
    run_steps(loop, make_loader(items, steps, config, processes))
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


def training_items(
    config: PretrainConfig, cache: AudioCache, targets: TeacherTargets | None
) -> StepDataset:
    """SimCLR's segment pairs, or single grid crops for distillation alone."""
    if config.objective == "distill":
        assert targets is not None  # the config refuses contrastive_weight 0 without a teacher
        held = validation_tracks(len(cache), config.validation_fraction, config.seed)
        return GridCrops(cache, targets, round(config.crop_jitter_seconds * SAMPLE_RATE), held)
    segment = round(config.segment_seconds * SAMPLE_RATE)
    return CropPairs(cache, segment_samples=segment, targets=targets)


def prepare_cache(
    config: PretrainConfig, data: list[Path], processes: Processes, progress: bool
) -> tuple[AudioCache, tuple[SkippedFile, ...]]:
    """Rank 0 decodes the corpus (and unpacks the targets of shard folders); the other ranks
    wait, then open the same cache."""
    shards = [Path(d) for d in data if is_shard(Path(d))]
    if shards and len(shards) != len(data):
        raise ConfigError("pass only shard folders (tools.gpu_shard) or only audio, not both")

    def build() -> tuple[AudioCache, tuple[SkippedFile, ...]]:
        cache, summary = build_cache(
            audio_folders(shards) if shards else data,
            SAMPLE_RATE,
            cache_root=Path(config.cache_dir) if config.cache_dir else None,
            allow_probe_sets=config.allow_probe_sets,
            progress=progress and processes.main,
        )
        return cache, summary.skipped

    if processes.main:
        result = build()
        if shards:
            _unpack_targets(config, result[0], shards)
    barrier()
    return result if processes.main else build()


def _unpack_targets(config: PretrainConfig, cache: AudioCache, shards: list[Path]) -> None:
    spec = install_targets(cache, shards)
    wanted = GridSpec(
        config.teacher_output, round(config.teacher_hop_seconds * SAMPLE_RATE), WINDOW_SAMPLES
    )
    if spec != wanted or not config.teacher:
        raise ConfigError(
            f"the shards hold {spec.output} targets on a {spec.hop / SAMPLE_RATE:g}-s grid; set "
            f"teacher (any path), teacher_output = {spec.output!r} and teacher_hop_seconds = "
            f"{spec.hop / SAMPLE_RATE:g} to train on them"
        )


def prepare_targets(
    config: PretrainConfig, cache: AudioCache, processes: Processes, progress: bool
) -> TeacherTargets:
    """The teacher targets of the cache's crop grid: computed once (rank 0), then reused.

    Never in the training step: missing targets are computed before the first step, unless
    the share of tracks that have them already reaches teacher_min_coverage (then the rest
    train on NT-Xent alone, masked, with a warning).
    """
    hop = round(config.teacher_hop_seconds * SAMPLE_RATE)
    spec = GridSpec(config.teacher_output, hop, WINDOW_SAMPLES)
    if processes.main and _coverage(cache, spec) < config.teacher_min_coverage:
        job = TargetJob(spec, Path(config.teacher), config.teacher_workers)
        build_targets(cache, job, progress)
    barrier()
    targets = TeacherTargets(cache, spec)
    if processes.main and targets.coverage < 1:
        warnings.warn(
            f"distilling on a partial target cache: {targets.available.mean():.0%} of the "
            f"tracks ({targets.coverage:.0%} of the crops) have teacher targets",
            stacklevel=2,
        )
    return targets


def _coverage(cache: AudioCache, spec: GridSpec) -> float:
    try:
        return float(TeacherTargets(cache, spec).available.mean())
    except (DataError, FileNotFoundError):  # nothing built yet
        return 0.0


def build_loop(
    config: PretrainConfig,
    items: StepDataset,
    output_dir: Path,
    resume: bool,
    processes: Processes,
    progress: bool,
) -> Loop:
    """The model (restored when resuming), augmentations, schedule and log the loop runs with."""
    total_steps = config.max_steps or config.epochs * items.steps_per_epoch(
        config.batch_size * processes.world
    )
    target_dim = items.targets.dim if items.targets is not None else 0
    parts = build_parts(config, output_dir, resume, processes, target_dim)
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
        validation=validation_batch(config, items),
        anchor=build_anchor(config, processes.device),
    )


def validation_batch(config: PretrainConfig, items: StepDataset) -> Batch | None:
    """The held-out crops scored every validate_every steps (distillation alone), or None."""
    if not isinstance(items, GridCrops) or config.validation_fraction == 0:
        return None
    return items.validation_batch(config.validation_crops)

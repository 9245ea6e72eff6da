"""CLMR/SimCLR pre-training: the config and the loop, readable top to bottom (nanoGPT style)."""

from __future__ import annotations

import dataclasses
import functools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from clmr_embed.constants import SAMPLE_RATE
from clmr_embed.errors import ConfigError
from training import pretrain_loop as loop
from training.augment import AugmentChain, AugmentConfig
from training.cache import SkippedFile
from training.config import CLMR_CHANNELS, config_from_dict, load_toml
from training.datasets import CropPairs, step_seed
from training.distributed import global_nt_xent, teardown
from training.layout import LAYOUTS
from training.metrics_log import MetricsLog
from training.schedule import lr_at


@dataclass(frozen=True)
class PretrainConfig:
    """Every setting of a pre-training run; saved resolved as output_dir/config.toml."""

    # model
    encoder_channels: tuple[int, ...] = CLMR_CHANNELS  # SampleCNN block widths (11)
    projection_hidden_dim: int = 512  # projector Linear(512, hidden) -> ReLU -> Linear(hidden, dim)
    projection_dim: int = 128  # CLMR v1 / released checkpoint: 128 (v2 used 64)
    # data
    batch_size: int = 48  # pairs per process (per GPU); the global batch is batch_size x world
    segment_seconds: float = 30.0  # item length: tracks are cut into 30 s segments (MTAT clips)
    same_track_negatives: bool = True  # v2: True; False masks segments of one track (v1)
    workers: int = 0  # DataLoader worker processes (0: load in the training process)
    cache_dir: str = ""  # audio cache root; "" = $XDG_CACHE_HOME/clmr-embed/audio-cache
    allow_probe_sets: bool = False  # permit gtzan_subset/medley_solos_subset (test-data leak)
    # length and optimisation
    max_steps: int = 0  # optimiser steps; 0 = epochs x steps per epoch
    epochs: int = 100  # passes over the segments, used when max_steps is 0
    stop_at_step: int = 0  # end this run early at this step (0: at the end); the schedule
    #   still spans the whole run, so a time-limited job can stop and resume later
    optimizer: str = "adam"  # "adam" (CLMR v2) or "lars" (v1; set lr ~ 0.075 x sqrt(batch))
    lr: float = 3e-4  # peak learning rate; CLMR v2's Adam: 3e-4
    weight_decay: float = 1e-6  # CLMR's config value; never applied to BN weights or biases
    schedule: str = "cosine"  # "cosine" (to lr x min_lr_ratio) or "constant" (v2), after warm-up
    warmup_steps: int = 0  # linear warm-up steps
    min_lr_ratio: float = 0.0  # cosine floor as a fraction of lr
    temperature: float = 0.5  # NT-Xent tau, CLMR v1 and v2
    # execution
    precision: str = "fp32"  # "fp32", "bf16" (autocast, CPU or CUDA), "fp16" (CUDA + GradScaler)
    compile: bool = False  # torch.compile the model (slow start, faster steps)
    device: str = "auto"  # "auto" (CUDA when available), "cpu" or "cuda"
    threads: int = 0  # torch intra-op threads on CPU; 0 = torch's default
    encoder_layout: str = "auto"  # "conv1d", "conv2d" (channels-last CPU) or "auto": see layout
    seed: int = 42  # CLMR's seed; fixes init, data order, crops and augmentations
    init_weights: str = ""  # checkpoint whose encoder (+ projector) weights start the run, e.g.
    #   checkpoints/clmr-free.pt to continue the default model; optimiser and schedule start anew
    # bookkeeping
    checkpoint_every: int = 1000  # steps between latest.pt/best.pt saves (and at the end)
    log_every: int = 10  # steps between metrics.jsonl lines
    augment: AugmentConfig = field(default_factory=AugmentConfig)  # CLMR v2 chain, [augment]

    def __post_init__(self) -> None:
        choices = {
            "optimizer": ("adam", "lars"),
            "precision": ("fp32", "bf16", "fp16"),
            "device": ("auto", "cpu", "cuda"),
            "schedule": ("cosine", "constant"),
            "encoder_layout": LAYOUTS,
        }
        for name, valid in choices.items():
            if getattr(self, name) not in valid:
                raise ConfigError(f"{name} = {getattr(self, name)!r}; use one of {list(valid)}")
        positive = ("batch_size", "checkpoint_every", "log_every", "projection_dim")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.max_steps <= 0 and self.epochs <= 0:
            raise ConfigError("set max_steps or epochs to a value > 0")


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


def load_pretrain_config(
    path: Path | None, overrides: dict[str, Any] | None = None
) -> PretrainConfig:
    """Defaults, then a TOML file, then `overrides` (dotted "augment.x" keys reach [augment]).

    Raises:
        ConfigError: unknown keys (named, with the valid ones), bad values, unreadable TOML.
    """
    data = load_toml(Path(path)) if path else {}
    augment = dict(data.pop("augment", {}))
    for key, value in (overrides or {}).items():
        if key.startswith("augment."):
            augment[key.removeprefix("augment.")] = value
        elif key == "augment":
            augment.update(value)
        else:
            data[key] = value
    return config_from_dict(
        PretrainConfig, {**data, "augment": config_from_dict(AugmentConfig, augment)}
    )


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
        data: folders, audio files or manifests (see training.cache.build_cache).
        output_dir: receives latest.pt, best.pt, config.toml, metrics.jsonl, loss.png.
        resume: continue from output_dir/latest.pt; the weights after N steps then equal those
            of an uninterrupted run.
        progress: tqdm bars on stderr (rank 0 only).

    Raises:
        ConfigError, DataError, CheckpointError: bad settings, data or resume state.
    """
    started = time.perf_counter()
    output_dir = Path(output_dir)
    rank, world, local_rank, device = loop.setup_processes(config)
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    cache, skipped = loop.prepare_cache(config, data, rank, progress)
    pairs = CropPairs(cache, segment_samples=round(config.segment_seconds * SAMPLE_RATE))
    steps_per_epoch = pairs.steps_per_epoch(config.batch_size * world)
    total_steps = config.max_steps or config.epochs * steps_per_epoch
    end_step = min(total_steps, config.stop_at_step or total_steps)

    parts = loop.build_training(config, output_dir, resume, device, world, local_rank)
    model, optimizer, scaler, state = parts.model, parts.optimizer, parts.scaler, parts.state
    augment = AugmentChain(config.augment, SAMPLE_RATE).to(device)
    loader = loop.make_loader(pairs, range(state.step, end_step), config, rank, world, device)
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
        state.step,
        total_steps,
        enabled=rank == 0 and progress,
        write=rank == 0,
        wall_offset=state.wall_seconds,
    )
    if rank == 0:
        loop.write_config(output_dir / "config.toml", config)

    window_loss = torch.zeros((), device=device)  # summed on the device: no per-step sync
    window_steps, window_start = 0, time.perf_counter()
    for batch in loader:
        # schedule: a pure function of the step, nothing to restore
        lr = schedule(state.step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        # two views, augmented on the device with a generator seeded by (seed, step, rank)
        x_i = batch["x_i"].to(device, non_blocking=True)
        x_j = batch["x_j"].to(device, non_blocking=True)
        generator = torch.Generator(device).manual_seed(
            step_seed(config.seed, "augment", state.step, rank)
        )
        with torch.no_grad():
            x_i, x_j = augment(x_i, generator), augment(x_j, generator)
        # forward in the chosen precision; the loss in fp32
        with loop.autocast(device, config.precision):
            _, _, z_i, z_j = parts.trainable(x_i, x_j)
        groups = None if config.same_track_negatives else batch["track"].to(device)
        # NT-Xent; under DDP the negatives are gathered from all ranks
        loss = global_nt_xent(z_i.float(), z_j.float(), config.temperature, groups)
        # backward and step
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        state.step += 1
        window_loss += loss.detach()
        window_steps += 1
        log.advance()
        # metrics every log_every steps (and after step 0, to record the first loss)
        if state.step % config.log_every == 0 or state.step in (1, end_step):
            mean_loss = window_loss.item() / window_steps
            seconds = time.perf_counter() - window_start
            clips_per_s = 2 * config.batch_size * world * window_steps / seconds
            state.observe(mean_loss)
            log.record(state.step, mean_loss, lr, clips_per_s)
            window_loss.zero_()
            window_steps, window_start = 0, time.perf_counter()
        # checkpoints on rank 0: latest.pt always, best.pt when the smoothed loss improves
        if rank == 0 and (state.step % config.checkpoint_every == 0 or state.step == end_step):
            state.wall_seconds = log.wall_seconds()
            loop.save_run(output_dir, model, optimizer, scaler, state, config)
            log.plot()

    log.close()
    teardown()
    return PretrainResult(
        checkpoint=output_dir / "latest.pt",
        best_checkpoint=output_dir / "best.pt",
        steps=state.step,
        first_loss=state.first_loss,
        final_loss=state.last_loss,
        wall_seconds=time.perf_counter() - started,
        skipped=skipped,
    )


def config_dict(config: PretrainConfig) -> dict[str, Any]:
    """The resolved config as plain TOML-able data (tuples as lists, [augment] nested)."""
    return {
        k: list(v) if isinstance(v, tuple) else v
        for k, v in dataclasses.asdict(config).items()
        if k != "augment"
    } | {
        "augment": {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in dataclasses.asdict(config.augment).items()
        }
    }


__all__ = [
    "PretrainConfig",
    "PretrainResult",
    "config_dict",
    "load_pretrain_config",
    "run_pretrain",
]

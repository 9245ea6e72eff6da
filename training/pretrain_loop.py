"""The pieces run_pretrain calls: processes, cache, model, optimiser, precision, saved run state."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from clmr_embed.constants import SAMPLE_RATE
from clmr_embed.errors import CheckpointError, ConfigError
from training import distributed
from training.cache import AudioCache, SkippedFile, build_cache
from training.checkpoint import Checkpoint, load_checkpoint, load_weights, save_checkpoint
from training.config import EncoderConfig, ProjectorConfig
from training.datasets import CropPairs, StepBatchSampler
from training.lars import LARS, decay_groups
from training.layout import choose_layout
from training.samplecnn import Projector, SampleCNN
from training.simclr import SimCLR

if TYPE_CHECKING:
    from training.pretrain import PretrainConfig

SMOOTHING = 0.9  # EMA weight of the logged losses that best.pt is judged by
# Settings that may change on resume; any other difference means a different run.
RESUMABLE = {
    "max_steps",
    "epochs",
    "stop_at_step",
    "checkpoint_every",
    "log_every",
    "device",
    "threads",
    "compile",
    "workers",
    "cache_dir",
    "precision",
    "init_weights",  # a resumed run takes its weights from latest.pt
    "encoder_layout",  # how the encoder computes, not what it stores
}


@dataclass
class RunState:
    """Progress that outlives a process: saved in Checkpoint.extra, restored on resume."""

    step: int = 0  # optimiser steps taken
    first_loss: float = math.nan  # loss of step 0
    last_loss: float = math.nan  # latest logged mean loss
    smoothed_loss: float = math.nan  # EMA of logged losses
    best_loss: float = math.inf  # lowest smoothed loss saved as best.pt
    wall_seconds: float = 0.0  # wall time of all parts of the run

    def observe(self, loss: float) -> None:
        """Record one logged mean loss."""
        self.first_loss = loss if math.isnan(self.first_loss) else self.first_loss
        self.last_loss = loss
        old = self.smoothed_loss
        self.smoothed_loss = loss if math.isnan(old) else SMOOTHING * old + (1 - SMOOTHING) * loss


@dataclass
class TrainingParts:
    """What the loop drives."""

    model: SimCLR  # the unwrapped module on the device: what checkpoints save
    trainable: nn.Module  # the same model compiled and/or DDP-wrapped: what the loop calls
    optimizer: torch.optim.Optimizer  # Adam or LARS, BN and biases without weight decay
    scaler: torch.amp.GradScaler  # fp16 loss scaling; a no-op otherwise
    state: RunState  # step, losses, wall time (restored on resume)


def setup_processes(config: PretrainConfig) -> tuple[int, int, int, torch.device]:
    """Join the torchrun process group if any (nccl on CUDA, gloo on CPU); pick the device."""
    cuda = config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available())
    if cuda and not torch.cuda.is_available():
        raise ConfigError("device = 'cuda' but torch sees no CUDA device; use 'auto' or 'cpu'")
    if config.precision == "fp16" and not cuda:
        raise ConfigError("precision 'fp16' needs CUDA (GradScaler); use 'bf16' on CPU")
    rank, world, local_rank = distributed.setup_from_env("nccl" if cuda else "gloo")
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    return rank, world, local_rank, device


def prepare_cache(
    config: PretrainConfig, data: list[Path], rank: int, progress: bool
) -> tuple[AudioCache, tuple[SkippedFile, ...]]:
    """Rank 0 decodes the corpus; the other ranks wait, then open the same cache."""

    def build() -> tuple[AudioCache, tuple[SkippedFile, ...]]:
        cache, summary = build_cache(
            data,
            SAMPLE_RATE,
            cache_root=Path(config.cache_dir) if config.cache_dir else None,
            allow_probe_sets=config.allow_probe_sets,
            progress=progress and rank == 0,
        )
        return cache, summary.skipped

    if rank == 0:
        result = build()
    _barrier()
    return result if rank == 0 else build()


def build_training(
    config: PretrainConfig,
    output_dir: Path,
    resume: bool,
    device: torch.device,
    world: int,
    local_rank: int,
) -> TrainingParts:
    """Seeded model, optimiser and scaler, restored from output_dir/latest.pt when resuming."""
    torch.manual_seed(config.seed)  # identical initial weights on every rank
    model = build_model(config)
    ckpt = restore(output_dir, model, config, world) if resume else None
    if ckpt is None:
        refuse_overwrite(output_dir)
        if config.init_weights:
            load_weights(Path(config.init_weights), model.encoder, model.projector)
    model, optimizer = place(model, config, device, world)
    # A compute layout only (same state dict): "auto" picks channels-last 2-D on AMX CPUs.
    model.encoder.layout = choose_layout(config.encoder_layout, device, config.precision)
    state = restore_optimizer(ckpt, optimizer, device) if ckpt else RunState()
    scaler = torch.amp.GradScaler("cuda", enabled=config.precision == "fp16")
    if ckpt is not None and ckpt.extra.get("scaler"):
        scaler.load_state_dict(ckpt.extra["scaler"])  # a resumed fp16 run keeps its loss scale
    trainable = wrap(model, config, device, world, local_rank)
    return TrainingParts(model, trainable, optimizer, scaler, state)


def make_loader(
    pairs: CropPairs,
    steps: range,
    config: PretrainConfig,
    rank: int,
    world: int,
    device: torch.device,
) -> DataLoader:
    """Batches of `steps`, this rank's slice; workers read the memory-mapped cache."""
    sampler = StepBatchSampler(pairs, steps, config.seed, config.batch_size, rank, world)
    return DataLoader(
        pairs,
        batch_sampler=sampler,
        num_workers=config.workers,
        pin_memory=device.type == "cuda",
        persistent_workers=config.workers > 0,
    )


def build_model(config: PretrainConfig) -> SimCLR:
    """SimCLR(SampleCNN, Projector 512 -> hidden ReLU -> projection_dim), on the CPU."""
    encoder = SampleCNN(EncoderConfig(channels=tuple(config.encoder_channels)))
    projector = Projector(
        ProjectorConfig(
            encoder.config.embedding_dim, config.projection_hidden_dim, config.projection_dim
        )
    )
    return SimCLR(encoder, projector)


def place(
    model: SimCLR, config: PretrainConfig, device: torch.device, world: int
) -> tuple[SimCLR, torch.optim.Optimizer]:
    """SyncBatchNorm (multi-GPU CUDA only: it refuses CPU tensors), move, build the optimiser."""
    if world > 1 and device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # same state-dict keys
    model.to(device)
    groups = decay_groups(model, config.weight_decay)
    if config.optimizer == "lars":
        return model, LARS(groups, lr=config.lr, weight_decay=config.weight_decay)
    return model, torch.optim.Adam(groups, lr=config.lr)


def wrap(
    model: SimCLR, config: PretrainConfig, device: torch.device, world: int, local_rank: int
) -> nn.Module:
    """torch.compile, then DDP (nanoGPT's order); `model` itself stays the unwrapped module."""
    trainable: nn.Module = torch.compile(model) if config.compile else model
    if world > 1:
        ids = [local_rank] if device.type == "cuda" else None
        trainable = nn.parallel.DistributedDataParallel(trainable, device_ids=ids)
    return trainable


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    """bf16/fp16 autocast, or nothing for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def refuse_overwrite(output_dir: Path) -> None:
    """A fresh run must not silently replace another run's checkpoints."""
    if (output_dir / "latest.pt").exists():
        raise ConfigError(
            f"{output_dir} already holds latest.pt; resume it, or pick a new output_dir"
        )


def restore(output_dir: Path, model: SimCLR, config: PretrainConfig, world: int) -> Checkpoint:
    """Load latest.pt's weights into `model` after checking it is the same run."""
    path = output_dir / "latest.pt"
    if not path.exists():
        raise CheckpointError(f"cannot resume: {path} does not exist; start without resume")
    ckpt = load_checkpoint(path)
    from training.pretrain import config_dict  # local: pretrain imports this module

    saved, now = ckpt.train_config, config_dict(config)
    changed = sorted(k for k in now if k not in RESUMABLE and saved.get(k) != now[k])
    if saved.get("world_size", world) != world:
        changed.append("world_size")
    if changed:
        raise ConfigError(
            f"cannot resume {path}: {changed} differ from the saved run; restore them"
        )
    model.encoder.load_state_dict(ckpt.encoder_state)
    model.projector.load_state_dict(ckpt.projector_state)
    return ckpt


def restore_optimizer(
    ckpt: Checkpoint, optimizer: torch.optim.Optimizer, device: torch.device
) -> RunState:
    """Optimiser and RNG states back; returns the run state saved with them."""
    optimizer.load_state_dict(ckpt.optimizer_state)
    extra = ckpt.extra
    torch.set_rng_state(extra["torch_rng"])
    if device.type == "cuda" and extra.get("cuda_rng") is not None:
        torch.cuda.set_rng_state(extra["cuda_rng"], device)
    return RunState(**extra["run_state"])


def save_run(
    output_dir: Path,
    model: SimCLR,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    state: RunState,
    config: PretrainConfig,
) -> None:
    """latest.pt always; best.pt too when the smoothed loss is the lowest so far."""
    from training.pretrain import config_dict  # local: pretrain imports this module

    improved = state.smoothed_loss < state.best_loss
    state.best_loss = min(state.best_loss, state.smoothed_loss)
    device = next(model.parameters()).device
    ckpt = Checkpoint(
        encoder_config=model.encoder.config,
        encoder_state={k: v.detach().cpu() for k, v in model.encoder.state_dict().items()},
        projector_config=model.projector.config,
        projector_state={k: v.detach().cpu() for k, v in model.projector.state_dict().items()},
        optimizer_state=optimizer.state_dict(),
        step=state.step,
        train_config=config_dict(config) | {"world_size": distributed.world_size()},
        extra={
            "run_state": dataclasses.asdict(state),
            "schedule": "pure function of the step (training.schedule.lr_at)",
            "data_order": "pure function of (seed, step, rank) (training.datasets.step_seed)",
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
            "scaler": scaler.state_dict() if scaler.is_enabled() else None,
        },
        source="clmr-embed pretrain",
    )
    save_checkpoint(output_dir / "latest.pt", ckpt)
    if improved:
        save_checkpoint(output_dir / "best.pt", ckpt)


def write_config(path: Path, config: PretrainConfig) -> None:
    """The resolved config as TOML (readable back by load_pretrain_config), written atomically."""
    from training.pretrain import config_dict  # local: pretrain imports this module

    top, lines = config_dict(config), ["# resolved clmr-embed pretrain config"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in top.items() if k != "augment"]
    lines += ["", "[augment]", *(f"{k} = {_toml_value(v)}" for k, v in top["augment"].items())]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the config from other users
    os.replace(tmp, path)


def _toml_value(value: Any) -> str:
    # JSON's strings, numbers, lists and lowercase booleans are valid TOML values
    # (inf/nan never occur in a validated config).
    return json.dumps(value)


def _barrier() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()

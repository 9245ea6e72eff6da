"""A run's progress that outlives a process: RunState, latest.pt/best.pt, and resuming from them."""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from clmr_embed.errors import CheckpointError, ConfigError
from training.checkpoint import Checkpoint, StateDict, save_checkpoint
from training.cpc import CPC
from training.pretrain.config import PretrainConfig, resume_conflicts
from training.pretrain.objectives import SimCLR
from training.weights import load_checkpoint

# Under "clmr_embed" so that `--log-file` (cli.options.logging_to) records training events too.
log = logging.getLogger("clmr_embed.train.pretrain")

SMOOTHING = 0.9  # EMA weight of the logged losses that best.pt is judged by
LATEST, BEST = "latest.pt", "best.pt"


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


def refuse_overwrite(output_dir: Path) -> None:
    """A fresh run must not silently replace another run's checkpoints."""
    if (output_dir / LATEST).exists():
        raise ConfigError(
            f"{output_dir} already holds {LATEST}; resume it, or pick a new output_dir"
        )


def restore(
    output_dir: Path, model: SimCLR | CPC, config: PretrainConfig, world: int
) -> Checkpoint:
    """Load latest.pt's weights into `model` after checking it is the same run."""
    path = output_dir / LATEST
    if not path.exists():
        raise CheckpointError(f"cannot resume: {path} does not exist; start without resume")
    ckpt = load_checkpoint(path)
    changed = resume_conflicts(ckpt.train_config, config, world)
    if changed:
        raise ConfigError(
            f"cannot resume {path}: {changed} differ from the saved run; restore them"
        )
    if ckpt.encoder_state is None or ckpt.projector_state is None:
        raise CheckpointError(f"cannot resume {path}: it holds no encoder and projector")
    model.encoder.load_state_dict(ckpt.encoder_state)
    model.projector.load_state_dict(ckpt.projector_state)
    if model.distill is not None:
        model.distill.load_state_dict(ckpt.extra["distill_head"])
    return ckpt


def restore_optimizer(
    ckpt: Checkpoint, optimizer: torch.optim.Optimizer, device: torch.device
) -> RunState:
    """Optimiser and RNG states back; returns the run state saved with them."""
    if ckpt.optimizer_state is None:
        raise CheckpointError("cannot resume a weights-only checkpoint; use init_weights instead")
    optimizer.load_state_dict(ckpt.optimizer_state)
    extra = ckpt.extra
    torch.set_rng_state(extra["torch_rng"])
    if device.type == "cuda" and extra.get("cuda_rng") is not None:
        torch.cuda.set_rng_state(extra["cuda_rng"], device)
    return RunState(**extra["run_state"])


def save_run(
    output_dir: Path,
    model: SimCLR | CPC,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    state: RunState,
    train_config: dict[str, Any],
) -> None:
    """latest.pt always; best.pt too when the smoothed loss is the lowest so far."""
    improved = state.smoothed_loss < state.best_loss
    state.best_loss = min(state.best_loss, state.smoothed_loss)
    device = next(model.parameters()).device
    ckpt = Checkpoint(
        **_configs(model),
        encoder_state=_cpu(model.encoder.state_dict()),
        projector_state=_cpu(model.projector.state_dict()),  # CPC: the step predictors
        optimizer_state=optimizer.state_dict(),
        step=state.step,
        train_config=train_config,
        extra={
            "run_state": dataclasses.asdict(state),
            "schedule": "pure function of the step (training.pretrain.schedule.lr_at)",
            "data_order": "pure function of (seed, step) and the global batch (pretrain.sampling)",
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
            "scaler": scaler.state_dict() if scaler.is_enabled() else None,
            # the distillation head: only to resume; export drops it
            "distill_head": _cpu(model.distill.state_dict()) if model.distill else None,
        },
        source="clmr-embed pretrain",
    )
    save_checkpoint(output_dir / LATEST, ckpt)
    if improved:
        save_checkpoint(output_dir / BEST, ckpt)
    log.debug("checkpoint saved: step %d, %s", state.step, output_dir / LATEST)


def _configs(model: SimCLR | CPC) -> dict[str, Any]:
    """The shape fields of the model's architecture (CPC's config names it in checkpoints)."""
    if isinstance(model, CPC):
        return {"cpc_config": model.encoder.config}
    return {"encoder_config": model.encoder.config, "projector_config": model.projector.config}


def _cpu(state: dict[str, torch.Tensor]) -> StateDict:
    return {k: v.detach().cpu() for k, v in state.items()}

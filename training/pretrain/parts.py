"""What the step loop drives: the seeded SimCLR or CPC model, its optimiser and scaler, wrapped."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import cast

import torch
from torch import nn

from training.batchnorm import convert_global_batchnorm
from training.config import CPCConfig, EncoderConfig, ProjectorConfig
from training.cpc import CPC, CPCEncoder
from training.layout import choose_layout
from training.pretrain.config import PretrainConfig
from training.pretrain.distill import DistillHead
from training.pretrain.distributed import Processes
from training.pretrain.lars import LARS, decay_groups
from training.pretrain.objectives import SimCLR
from training.pretrain.state import RunState, refuse_overwrite, restore, restore_optimizer
from training.samplecnn import Projector, SampleCNN
from training.weights import load_weights


@dataclass
class TrainingParts:
    """What the loop drives."""

    model: SimCLR | CPC  # the unwrapped module on the device: what checkpoints save
    trainable: nn.Module  # the same model compiled and/or DDP-wrapped: what the loop calls
    optimizer: torch.optim.Optimizer  # Adam, AdamW or LARS, BN and biases without weight decay
    scaler: torch.amp.GradScaler  # fp16 loss scaling; a no-op otherwise
    state: RunState  # step, losses, wall time (restored on resume)


def build_parts(
    config: PretrainConfig,
    output_dir: Path,
    resume: bool,
    processes: Processes,
    target_dim: int = 0,
) -> TrainingParts:
    """Seeded model, optimiser and scaler, restored from output_dir/latest.pt when resuming.

    `target_dim` > 0 adds the distillation head (teacher targets of that width).
    """
    torch.manual_seed(config.seed)  # identical initial weights on every rank
    model = build_model(config, target_dim)
    ckpt = restore(output_dir, model, config, processes.world) if resume else None
    if ckpt is None:
        refuse_overwrite(output_dir)
        if config.init_weights:
            load_weights(Path(config.init_weights), model.encoder, model.projector)
    model, optimizer = place(model, config, processes)
    if isinstance(model.encoder, SampleCNN):
        # A compute layout only (same state dict): "auto" picks channels-last 2-D on AMX CPUs.
        layout = choose_layout(config.encoder_layout, processes.device, config.precision)
        model.encoder.layout = layout
    state = restore_optimizer(ckpt, optimizer, processes.device) if ckpt else RunState()
    scaler = torch.amp.GradScaler("cuda", enabled=config.precision == "fp16")
    if ckpt is not None and ckpt.extra.get("scaler"):
        scaler.load_state_dict(ckpt.extra["scaler"])  # a resumed fp16 run keeps its loss scale
    trainable = wrap(model, config, processes)
    return TrainingParts(model, trainable, optimizer, scaler, state)


def build_model(config: PretrainConfig, target_dim: int = 0) -> SimCLR | CPC:
    """SimCLR(SampleCNN, Projector 512 -> hidden ReLU -> projection_dim), on the CPU; with
    `target_dim`, a distillation head embedding -> teacher target too. CPC for method "cpc"."""
    if config.method == "cpc":
        return CPC(CPCEncoder(cpc_config(config)))
    encoder = SampleCNN(EncoderConfig(channels=tuple(config.encoder_channels)))
    projector = Projector(
        ProjectorConfig(
            encoder.config.embedding_dim, config.projection_hidden_dim, config.projection_dim
        )
    )
    dim = encoder.config.embedding_dim
    head = DistillHead(dim, target_dim, config.teacher_head) if target_dim else None
    return SimCLR(encoder, projector, head)


def cpc_config(config: PretrainConfig) -> CPCConfig:
    """The CPC shape a run's settings name (the window is the pipeline's 59049 samples)."""
    return CPCConfig(config.cpc_hidden_dim, config.cpc_context_dim, config.cpc_prediction_steps)


def place(
    model: SimCLR | CPC, config: PretrainConfig, processes: Processes
) -> tuple[SimCLR | CPC, torch.optim.Optimizer]:
    """BatchNorm over the global batch when there are several processes, move, build the optimiser.

    torch's SyncBatchNorm on CUDA; on CPU (gloo), where it refuses CPU tensors, GlobalBatchNorm1d.
    Both keep the state-dict keys, so checkpoints load at any world size.
    """
    if processes.world > 1 and processes.device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    elif processes.world > 1:
        model = convert_global_batchnorm(model)
    model.to(processes.device)
    groups = decay_groups(model, config.weight_decay)
    if config.optimizer == "lars":
        return model, LARS(groups, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":  # decoupled decay, from each group's weight_decay
        return model, torch.optim.AdamW(groups, lr=config.lr)
    return model, torch.optim.Adam(groups, lr=config.lr)


class Distiller(nn.Module):
    """encoder -> distillation head of a SimCLR model: the one forward of distillation alone.

    It shares the model's modules (checkpoints still save the SimCLR model); the projector is not
    called, so DDP sees no unused parameters.
    """

    def __init__(self, model: SimCLR) -> None:
        super().__init__()
        if model.distill is None:
            raise ValueError("distillation alone needs a model with a distillation head")
        self.encoder, self.distill = model.encoder, model.distill

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, 1, window] -> (predicted standardised targets [B, target_dim], embeddings)."""
        embedding = self.encoder(x)
        return self.distill(embedding), embedding


def wrap(model: SimCLR | CPC, config: PretrainConfig, processes: Processes) -> nn.Module:
    """torch.compile, then DDP (nanoGPT's order); `model` itself stays the unwrapped module."""
    called: nn.Module = model
    if config.objective == "distill":
        assert isinstance(model, SimCLR)  # the config refuses a teacher with CPC
        called = Distiller(model)
    # torch.compile is typed as returning a callable; it returns the wrapped module.
    trainable = cast(nn.Module, torch.compile(called)) if config.compile else called
    if processes.world > 1:
        ids = [processes.local_rank] if processes.device.type == "cuda" else None
        trainable = nn.parallel.DistributedDataParallel(trainable, device_ids=ids)
    return trainable

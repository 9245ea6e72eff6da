"""The pre-training step loop: schedule, augment, forward, loss, backward, log, checkpoint."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from training.config import config_to_dict
from training.pretrain.anchor import Anchor, anchor_loss
from training.pretrain.augment import AugmentChain, Rows
from training.pretrain.config import PretrainConfig
from training.pretrain.distill import distill_loss, masked_loss
from training.pretrain.distributed import Processes, is_distributed
from training.pretrain.metrics_log import MetricsLog
from training.pretrain.objectives import global_info_nce, global_nt_xent
from training.pretrain.parts import TrainingParts
from training.pretrain.sampling import step_seed
from training.pretrain.state import save_run

# SimCLR: "x_i", "x_j" [B, 1, window] float32, "track" [B] int64 (+ "t_*", "m_*" with a teacher);
# distillation alone: "x" [B, 1, window], "t" [B, dim] standardised targets, "m" [B] bool;
# CPC reads only SimCLR's "x_i" (one crop per example)
Batch = dict[str, Tensor]


@dataclass(frozen=True)
class Loop:
    """Everything the step loop reads, built once by run_pretrain."""

    config: PretrainConfig  # the run's settings
    processes: Processes  # rank, world and device of this process
    parts: TrainingParts  # model, optimiser, scaler and the run state the loop advances
    augment: AugmentChain  # the augmentation chain, on the device
    schedule: Callable[[int], float]  # learning rate of a step: a pure function, nothing to save
    log: MetricsLog  # progress bar, metrics.jsonl, loss.png
    output_dir: Path  # where latest.pt and best.pt go
    end_step: int  # the step this call stops at (stop_at_step or the end of the run)
    validation: Batch | None = None  # held-out crops for the validation MSE (distillation alone)
    anchor: Anchor | None = None  # the frozen starting encoder of anchor_weight > 0, else None


@dataclass
class LossWindow:
    """Loss terms since the last metrics line, summed on the device so steps do not synchronise."""

    total: Tensor  # summed (NT-Xent or InfoNCE, teacher, anchor) terms, a device vector of 3
    steps: int = 0  # steps summed
    started: float = field(default_factory=time.perf_counter)  # when the window opened

    def add(self, terms: Tensor) -> None:
        """One step's (detached) loss terms."""
        self.total += terms
        self.steps += 1

    def close(self) -> tuple[list[float], float]:
        """(mean terms over the steps and every process, steps per second) of the window, then
        start a new one. Under DDP each rank's terms are its rows' share, so the mean over ranks
        is the global batch's loss (every rank closes its window at the same steps)."""
        total = self.total.clone()
        if is_distributed():
            torch.distributed.all_reduce(total)
            total /= torch.distributed.get_world_size()
        means = (total / self.steps).tolist()
        rate = self.steps / (time.perf_counter() - self.started)
        self.total.zero_()
        self.steps, self.started = 0, time.perf_counter()
        return means, rate


def run_steps(loop: Loop, loader: Iterable[Batch]) -> None:
    """Train on every batch of `loader`: a metrics line every log_every steps (and after steps 1
    and end_step), latest.pt/best.pt every checkpoint_every steps and at end_step (rank 0)."""
    state, config = loop.parts.state, loop.config
    window = LossWindow(torch.zeros(3, device=loop.processes.device))
    if loop.validation is not None and state.step == 0:  # the starting point, to compare with
        loop.log.record_validation(0, validation_mse(loop, loop.validation))
    for batch in loader:
        lr = _set_lr(loop.parts.optimizer, loop.schedule(state.step))
        window.add(train_step(loop, batch))
        state.step += 1
        loop.log.advance()
        if state.step % config.log_every == 0 or state.step in (1, loop.end_step):
            _record(loop, window, lr)
        if loop.validation is not None and (
            state.step % config.validate_every == 0 or state.step == loop.end_step
        ):
            loop.log.record_validation(state.step, validation_mse(loop, loop.validation))
        if loop.processes.main and (
            state.step % config.checkpoint_every == 0 or state.step == loop.end_step
        ):
            _checkpoint(loop)


def train_step(loop: Loop, batch: Batch) -> Tensor:
    """One optimiser step; returns the detached (NT-Xent, teacher, anchor) terms, still on the
    device (teacher 0 when not distilling, NT-Xent 0 when distilling alone, anchor 0 without
    an anchor)."""
    if loop.config.objective == "distill":
        return distill_step(loop, batch)
    if loop.config.objective == "cpc":
        return cpc_step(loop, batch)
    parts, config, device = loop.parts, loop.config, loop.processes.device
    x_i, x_j = augmented_views(loop, batch)
    with forward_scope(loop):  # the forward in the chosen precision
        out = parts.trainable(x_i, x_j)
    groups = None if config.same_track_negatives else batch["track"].to(device)
    # NT-Xent in fp32; under DDP the negatives are gathered from all ranks
    nt_xent = global_nt_xent(out[2].float(), out[3].float(), config.temperature, groups)
    teacher = teacher_term(out[4:], batch, device) if len(out) > 4 else torch.zeros_like(nt_xent)
    loss = config.contrastive_weight * nt_xent + config.teacher_weight * teacher
    optimise(parts, loss, _frozen(loop))
    return torch.stack([nt_xent.detach(), teacher.detach(), torch.zeros_like(nt_xent)])


def distill_step(loop: Loop, batch: Batch) -> Tensor:
    """One step of distillation alone: one forward per crop, MSE to its clean grid target (plus
    the anchor term: the distance to the frozen starting encoder's embedding of the same crop)."""
    parts, config, device = loop.parts, loop.config, loop.processes.device
    x = batch["x"].to(device, non_blocking=True)
    seed = step_seed(config.seed, "augment", parts.state.step)
    with torch.no_grad():
        x = loop.augment(x, torch.Generator(device).manual_seed(seed), _rows(loop, len(x)))
    frozen = _frozen(loop)
    with forward_scope(loop):
        predicted, embedding = parts.trainable(x)
        # during the head warm-up the encoder is the anchor: nothing to compute
        anchored = loop.anchor(x) if loop.anchor is not None and frozen is None else None
    target = batch["t"].to(device, non_blocking=True)
    teacher = masked_loss(predicted, target, batch["m"].to(device, non_blocking=True))
    anchor = anchor_loss(embedding, anchored) if anchored is not None else torch.zeros_like(teacher)
    loss = config.teacher_weight * teacher + config.anchor_weight * anchor
    optimise(parts, loss, frozen)
    return torch.stack([torch.zeros_like(teacher), teacher.detach(), anchor.detach()])


def cpc_step(loop: Loop, batch: Batch) -> Tensor:
    """One CPC step: InfoNCE on one clean crop per example (CPC needs no views to augment)."""
    parts, config, device = loop.parts, loop.config, loop.processes.device
    x = batch["x_i"].to(device, non_blocking=True)
    with forward_scope(loop):
        z, predictions = parts.trainable(x)
    seed = step_seed(config.seed, "negatives", parts.state.step, loop.processes.rank)
    generator = torch.Generator(device).manual_seed(seed)
    # InfoNCE in fp32; under DDP the negatives are drawn from all ranks' z
    loss = global_info_nce(z.float(), predictions.float(), config.cpc_negatives, generator)
    optimise(parts, config.contrastive_weight * loss, _frozen(loop))
    zero = torch.zeros_like(loss)
    return torch.stack([loss.detach(), zero, zero])


def optimise(parts: TrainingParts, loss: Tensor, frozen: nn.Module | None = None) -> None:
    """Backward (scaled for fp16) and one optimiser step that leaves `frozen` as it is.

    The frozen module's gradients are dropped after the backward (which DDP still reduces, so
    every rank agrees): Adam, AdamW and LARS skip a parameter without a gradient, moments and
    weight decay included.
    """
    parts.optimizer.zero_grad(set_to_none=True)
    parts.scaler.scale(loss).backward()
    for parameter in frozen.parameters() if frozen is not None else ():
        parameter.grad = None
    parts.scaler.step(parts.optimizer)
    parts.scaler.update()


@contextlib.contextmanager
def forward_scope(loop: Loop) -> Iterator[None]:
    """A step's forward: in the run's precision and, during the head warm-up of a single-process
    run, with the frozen encoder outside autograd, so the backward stops at the head.

    The encoder's backward is about two thirds of a step and its gradients would be dropped
    anyway (`optimise`); under DDP they are still computed, since its reducer waits for every
    parameter it was built with.
    """
    frozen = _frozen(loop)
    outside: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
    if frozen is not None and loop.processes.world == 1:
        outside = without_grad(frozen)
    with autocast(loop.processes.device, loop.config.precision), outside:
        yield


@contextlib.contextmanager
def without_grad(module: nn.Module) -> Iterator[None]:
    """`module`'s parameters out of autograd (requires_grad False) inside, as they were after."""
    trained = [p for p in module.parameters() if p.requires_grad]
    for parameter in trained:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter in trained:
            parameter.requires_grad_(True)


def _frozen(loop: Loop) -> nn.Module | None:
    """The encoder during the head warm-up (head_warmup_steps), else nothing."""
    if loop.parts.state.step < loop.config.head_warmup_steps:
        return loop.parts.model.encoder
    return None


def validation_mse(loop: Loop, batch: Batch) -> float:
    """MSE of the distillation head on held-out crops, in eval mode (BatchNorm running stats)."""
    model, config, device = loop.parts.model, loop.config, loop.processes.device
    assert model.distill is not None
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad(), autocast(device, config.precision):
        for lo in range(0, len(batch["x"]), config.batch_size):
            x = batch["x"][lo : lo + config.batch_size].to(device)
            predicted = model.distill(model.encoder(x))
            target = batch["t"][lo : lo + config.batch_size].to(device)
            total += float(distill_loss(predicted, target)) * len(x)
            count += len(x)
    model.train()
    return total / count


def teacher_term(predicted: tuple[Tensor, ...], batch: Batch, device: torch.device) -> Tensor:
    """Each view regresses its own clean crop's standardised teacher target (masked MSE)."""
    target = torch.cat([batch["t_i"], batch["t_j"]]).to(device, non_blocking=True)
    mask = torch.cat([batch["m_i"], batch["m_j"]]).to(device, non_blocking=True)
    return masked_loss(torch.cat(predicted), target, mask)


def augmented_views(loop: Loop, batch: Batch) -> tuple[Tensor, Tensor]:
    """Both views on the device (the second left clean when augment.views is 1), augmented with
    a generator seeded by (seed, step): every process draws for the global batch and keeps its
    rows, so the world size changes nothing."""
    device, step = loop.processes.device, loop.parts.state.step
    x_i = batch["x_i"].to(device, non_blocking=True)
    x_j = batch["x_j"].to(device, non_blocking=True)
    generator = torch.Generator(device).manual_seed(step_seed(loop.config.seed, "augment", step))
    rows = _rows(loop, len(x_i))
    with torch.no_grad():
        x_i = loop.augment(x_i, generator, rows)
        return x_i, loop.augment(x_j, generator, rows) if loop.config.augment.views == 2 else x_j


def _rows(loop: Loop, batch_size: int) -> Rows:
    """This process's rows of the global batch (every rank holds `batch_size` of them)."""
    processes = loop.processes
    return Rows(processes.rank * batch_size, processes.world * batch_size)


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    """bf16/fp16 autocast, or nothing for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def _set_lr(optimizer: torch.optim.Optimizer, lr: float) -> float:
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr


def _record(loop: Loop, window: LossWindow, lr: float) -> None:
    """A metrics line: mean loss (and its terms when distilling), lr and windows per second."""
    (nt_xent, teacher, anchor), steps_per_s = window.close()
    config = loop.config
    mean_loss = (
        config.contrastive_weight * nt_xent
        + config.teacher_weight * teacher
        + config.anchor_weight * anchor
    )
    windows = config.windows_per_example * config.batch_size * loop.processes.world
    clips_per_s = windows * steps_per_s
    loop.parts.state.observe(mean_loss)
    terms = [nt_xent, teacher] if loop.parts.model.distill is not None else None
    if terms is not None and loop.anchor is not None:
        terms.append(anchor)
    loop.log.record(loop.parts.state.step, mean_loss, lr, clips_per_s, terms)


def _checkpoint(loop: Loop) -> None:
    parts = loop.parts
    parts.state.wall_seconds = loop.log.wall_seconds()
    saved = config_to_dict(loop.config) | {"world_size": loop.processes.world}
    save_run(loop.output_dir, parts.model, parts.optimizer, parts.scaler, parts.state, saved)
    loop.log.plot()

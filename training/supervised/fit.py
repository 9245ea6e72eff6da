"""One round of the supervised baseline: SampleCNN + head trained end to end, resumable."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from clmr_embed.errors import CheckpointError, ConfigError
from training.checkpoint import Checkpoint, save_checkpoint
from training.config import HeadConfig, config_to_dict
from training.linear.baselines import recalibrate_batchnorm
from training.linear.probe import head_task, task_loss, window_targets
from training.linear.splits import Fold
from training.samplecnn import SampleCNN, Tagger, TaggerHead
from training.supervised.config import SupervisedConfig
from training.supervised.data import ClipAudio
from training.weights import load_checkpoint

LATEST, BEST = "latest.pt", "best.pt"
# Settings a resumed round may change: they do not alter the steps already taken.
RESUMABLE = ("max_steps", "eval_every", "checkpoint_every", "device")


@dataclass(frozen=True)
class Round:
    """One round to train: its items, settings and folder."""

    audio: ClipAudio  # the clips (fold indices point into audio.data)
    fold: Fold  # train / early-stopping valid / test items (test is scored by the caller)
    config: SupervisedConfig  # optimiser, steps and label fraction
    folder: Path  # holds the round's latest.pt and best.pt
    resume: bool  # continue from folder/latest.pt when it exists


@dataclass
class Progress:
    """A round's state beyond the weights, saved in Checkpoint.extra."""

    step: int = 0  # optimiser steps taken
    best_loss: float = math.inf  # lowest validation loss so far (best.pt holds its weights)
    best_step: int = 0  # the step of best_loss


def train_device(name: str) -> torch.device:
    """The torch device of a setting; "auto" is CUDA when present, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def new_tagger(audio: ClipAudio, config: SupervisedConfig) -> Tagger:
    """A seeded fresh SampleCNN + linear head for the data's labels and task."""
    data = audio.data
    head = HeadConfig(config.encoder.embedding_dim, len(data.labels), 0, head_task(data.task))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.splits.seed)
        return Tagger(SampleCNN(config.encoder), TaggerHead(head))


def round_checkpoint(r: Round, tagger: Tagger, progress: Progress) -> Checkpoint:
    """The tagger's weights, labels and progress (no optimiser state: see `fit_round`)."""
    encoder, head = tagger.encoder, tagger.head
    assert isinstance(encoder, SampleCNN) and isinstance(head, TaggerHead)  # built by new_tagger
    return Checkpoint(
        encoder_config=encoder.config,
        encoder_state={k: v.detach().cpu().clone() for k, v in encoder.state_dict().items()},
        head_config=head.config,
        head_state={k: v.detach().cpu().clone() for k, v in head.state_dict().items()},
        labels=list(r.audio.data.labels),
        step=progress.step,
        train_config={"supervised": config_to_dict(r.config), "task": r.audio.data.task},
        extra={"progress": dataclasses.asdict(progress), "trained": progress.step > 0},
        source="clmr-embed supervised",
    )


def _restore(r: Round, tagger: Tagger, optimiser: torch.optim.Optimizer) -> Progress:
    """latest.pt's weights, optimiser and progress, after checking it is the same round."""
    path = r.folder / LATEST
    if not r.resume or not path.exists():
        return Progress()
    ckpt = load_checkpoint(path)
    saved, now = ckpt.train_config.get("supervised", {}), config_to_dict(r.config)
    changed = sorted(k for k in now if k not in RESUMABLE and saved.get(k) != now[k])
    if changed:
        raise ConfigError(f"cannot resume {path}: {changed} differ from the saved run")
    if ckpt.optimizer_state is None or ckpt.encoder_state is None or ckpt.head_state is None:
        raise CheckpointError(f"cannot resume {path}: it holds no weights and optimiser state")
    tagger.encoder.load_state_dict(ckpt.encoder_state)
    tagger.head.load_state_dict(ckpt.head_state)
    optimiser.load_state_dict(ckpt.optimizer_state)
    return Progress(**ckpt.extra["progress"])


def validation_windows(audio: ClipAudio, valid: np.ndarray, limit: int) -> tuple[torch.Tensor, ...]:
    """At most `limit` windows of the validation clips, evenly spread over each, and targets."""
    if len(valid) == 0:
        return ()
    per_item = max(1, limit // len(valid))
    parts, owner = [], []
    for position, item in enumerate(valid):
        windows = audio.windows(int(item))
        pick = np.unique(np.linspace(0, len(windows) - 1, per_item).round().astype(int))
        parts.append(windows[pick])
        owner += [position] * len(pick)
    targets = window_targets(audio.data, valid, np.asarray(owner, dtype=np.int64))
    return torch.from_numpy(np.concatenate(parts))[:, None, :], targets


class _OnDevice(nn.Module):
    """A module fed CPU batches (recalibrate_batchnorm's) on its own device."""

    def __init__(self, inner: nn.Module, device: torch.device) -> None:
        super().__init__()
        self.inner, self.device = inner, device

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.inner(x.to(self.device))
        return out


def validation_loss(
    tagger: Tagger, valid: tuple[torch.Tensor, ...], loss_fn: nn.Module, calibration: torch.Tensor
) -> float:
    """Mean loss over the validation windows in eval mode, BatchNorm recalibrated first.

    The running statistics lag weights that move fast (small sets, early steps), so the
    statistics of the current weights are recomputed on training windows (`calibration`).
    """
    x, y = valid
    batch = 64  # windows per forward pass: bounds the activations' memory
    device = next(tagger.parameters()).device
    windows = calibration[:, 0].numpy()
    recalibrate_batchnorm(_OnDevice(tagger.encoder, device), [windows], len(windows))
    tagger.eval()
    with torch.no_grad():
        total = sum(
            float(loss_fn(tagger(xs.to(device))[1], ys.to(device))) * len(xs)
            for xs, ys in zip(x.split(batch), y.split(batch), strict=True)
        )
    return total / len(x)


def fit_round(r: Round) -> tuple[Tagger, Progress]:
    """Train a round up to max_steps (from its latest.pt when resuming); keep the best weights.

    Saves latest.pt (weights, optimiser, progress) every checkpoint_every steps, at each
    validation (every eval_every steps) and at the end; best.pt whenever the validation loss is
    the lowest so far. Every step's batch is a pure function of the step, so a resumed round
    takes the same steps as an uninterrupted one.

    Returns:
        (the tagger on its device in eval mode, with best.pt's weights when there is a validation
        set, else the last ones; the round's progress).
    """
    cfg, device = r.config, train_device(r.config.device)
    r.folder.mkdir(parents=True, exist_ok=True)
    tagger = new_tagger(r.audio, cfg).to(device)
    optimiser = torch.optim.Adam(tagger.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    progress = _restore(r, tagger, optimiser)
    valid = validation_windows(r.audio, r.fold.valid, cfg.valid_windows)
    calibration = validation_windows(r.audio, r.fold.train, cfg.valid_windows)[0]
    loss_fn = task_loss(head_task(r.audio.data.task))
    while progress.step < cfg.max_steps:
        tagger.train()
        x, y = r.audio.batch(r.fold.train, progress.step, cfg.splits.seed, cfg.batch_size)
        optimiser.zero_grad(set_to_none=True)
        loss_fn(tagger(x.to(device))[1], y.to(device)).backward()
        optimiser.step()
        progress.step += 1
        last = progress.step == cfg.max_steps
        evaluate = bool(valid) and (last or progress.step % cfg.eval_every == 0)
        if evaluate:
            _observe(r, tagger, progress, validation_loss(tagger, valid, loss_fn, calibration))
        # after a best.pt, latest.pt too: a resumed round then knows the loss best.pt holds
        if evaluate or last or progress.step % cfg.checkpoint_every == 0:
            _save(r, LATEST, tagger, progress, optimiser.state_dict())
    return _final(r, tagger, progress), progress


def _observe(r: Round, tagger: Tagger, progress: Progress, loss: float) -> None:
    if loss < progress.best_loss:
        progress.best_loss, progress.best_step = loss, progress.step
        _save(r, BEST, tagger, progress, None)


def _save(r: Round, name: str, tagger: Tagger, progress: Progress, optimiser: Any) -> None:
    ckpt = round_checkpoint(r, tagger, progress)
    save_checkpoint(r.folder / name, dataclasses.replace(ckpt, optimizer_state=optimiser))


def _final(r: Round, tagger: Tagger, progress: Progress) -> Tagger:
    """The weights to score: best.pt's when validation ran, else the last ones."""
    best = r.folder / BEST
    if best.exists() and math.isfinite(progress.best_loss):
        ckpt = load_checkpoint(best)
        assert ckpt.encoder_state is not None and ckpt.head_state is not None  # saved by _save
        tagger.encoder.load_state_dict(ckpt.encoder_state)
        tagger.head.load_state_dict(ckpt.head_state)
    return tagger.eval()

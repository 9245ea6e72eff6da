"""The linear probe: a head on frozen window embeddings, scored per clip over grouped folds."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, cast

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from clmr_embed.errors import ConfigError, DataError
from training.checkpoint import Checkpoint
from training.config import HeadConfig, config_to_dict
from training.linear.config import LinearEvalConfig
from training.linear.dataset import LabelledSet
from training.linear.features import Features
from training.linear.metrics import score
from training.linear.splits import Fold, final_split, make_folds
from training.samplecnn import TaggerHead

Indices = npt.NDArray[np.int64]


class EvalSettings(Protocol):
    """What a report reads of a run's settings: a dataclass with the label fraction it used."""

    __dataclass_fields__: ClassVar[dict[str, Any]]  # a dataclass: to_dict writes it out

    @property
    def label_fraction(self) -> float:
        """Share of training labels used."""
        ...


@dataclass(frozen=True)
class FoldResult:
    """Scores and sizes of one evaluation round."""

    name: str  # "given" or "r{repeat}f{fold}"
    metrics: dict[str, float]  # see training.linear.metrics.score
    per_label: dict[str, dict[str, float]]  # label -> roc_auc, pr_auc, positives
    sizes: dict[str, int]  # items in train / valid / test
    epochs: int  # epochs trained (early stopping included)
    effective_fraction: float  # label fraction actually used (>= asked, to keep every label)


@dataclass(frozen=True)
class EvalResult:
    """Everything a run produces: per-fold scores, their summary, and the head to export."""

    config: EvalSettings  # the run's settings (LinearEvalConfig; another trainer's own)
    task: str  # task of the data ("multiclass", "multilabel", "soft")
    labels: tuple[str, ...]  # head outputs, in order
    folds: tuple[FoldResult, ...]  # one per evaluation round
    summary: dict[str, tuple[float, float]]  # metric -> (mean, std over folds; std 0 for one)
    checkpoint: Checkpoint  # head trained on all training data (head_config, head_state, labels)
    protocol: str = ""  # how the scores came about; "": the linear probe's PROTOCOL

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view (no tensors)."""
        return {
            "config": dataclasses.asdict(self.config),
            "task": self.task,
            "labels": list(self.labels),
            "summary": {k: {"mean": m, "std": s} for k, (m, s) in self.summary.items()},
            "folds": [dataclasses.asdict(f) for f in self.folds],
            "protocol": self.protocol or PROTOCOL,
        }


PROTOCOL = (
    "frozen features (encoder embeddings or a baseline); head trained on every window of each "
    "training clip with its clip's targets; clip score = mean of per-window probabilities "
    "(sigmoid for multilabel/soft, softmax for multiclass) over all of the clip's windows; "
    "early stopping on window-level validation loss"
)


def head_task(task: str) -> str:
    """HeadConfig task of a data task: soft targets use sigmoid outputs like multilabel."""
    return "multiclass" if task == "multiclass" else "multilabel"


def _stack(features: Features, idx: Indices) -> tuple[torch.Tensor, npt.NDArray[np.int64]]:
    """Windows of the items at idx as one tensor, and the item position of every window."""
    parts = [features.windows[i] for i in idx]
    owner = np.repeat(np.arange(len(idx)), [len(p) for p in parts])
    return torch.from_numpy(np.concatenate(parts).astype(np.float32, copy=False)), owner


def task_loss(task: str) -> nn.Module:
    """Cross-entropy over classes for a multiclass head, per-label BCE otherwise."""
    return nn.CrossEntropyLoss() if task == "multiclass" else nn.BCEWithLogitsLoss()


def window_targets(data: LabelledSet, idx: Indices, owner: npt.NDArray[np.int64]) -> torch.Tensor:
    """Per-window targets: class indices for multiclass, float rows otherwise."""
    t = data.targets[idx][owner]
    return torch.from_numpy(t.argmax(axis=1) if data.task == "multiclass" else t)


def fold_standardisation(head: TaggerHead, mean: torch.Tensor, std: torch.Tensor) -> None:
    """Fold z-scoring into the first layer (W/std, b - W/std @ mean): the head takes raw input."""
    first = cast(nn.Linear, head[0])  # TaggerHead's first layer, linear or MLP
    with torch.no_grad():
        first.weight.div_(std[None, :])
        first.bias.sub_(first.weight @ mean)


Batch = tuple[torch.Tensor, torch.Tensor]


def _train(head: TaggerHead, train: Batch, valid: Batch | None, config: LinearEvalConfig) -> int:
    """Adam on shuffled window batches; keeps the weights of the lowest validation loss.

    Returns:
        Epochs run (early stopping after `patience` epochs without improvement).
    """
    x, y = train
    batch_size = max(1, min(config.batch_size, math.ceil(len(x) / config.min_steps_per_epoch)))
    generator = torch.Generator().manual_seed(config.seed)
    optimiser = torch.optim.Adam(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    loss_fn = task_loss(head.config.task)
    best, best_state, stale, epochs = math.inf, None, 0, 0
    while epochs < config.max_epochs and stale < config.patience:
        epochs += 1
        head.train()
        for batch in torch.randperm(len(x), generator=generator).split(batch_size):
            batch = batch.to(x.device)
            optimiser.zero_grad(set_to_none=True)
            loss_fn(head(x[batch]), y[batch]).backward()
            optimiser.step()
        if valid is None:
            continue
        head.eval()
        with torch.no_grad():
            valid_loss = float(loss_fn(head(valid[0]), valid[1]))
        stale += 1
        if valid_loss < best:
            best, stale = valid_loss, 0
            best_state = {k: v.detach().clone() for k, v in head.state_dict().items()}
    if best_state is not None:
        head.load_state_dict(best_state)
    return epochs


def fit_head(
    features: Features, data: LabelledSet, fold: Fold, config: LinearEvalConfig
) -> tuple[TaggerHead, int]:
    """Train a head on the windows of fold.train, early-stopped on those of fold.valid.

    Returns:
        (head on the CPU in eval mode, taking raw embeddings; epochs trained).
    """
    device = torch.device(config.device)
    mean, std = torch.zeros(features.dim), torch.ones(features.dim)
    if config.standardise:
        x, _ = _stack(features, fold.train)
        mean, std = x.mean(0), x.std(0).nan_to_num(1.0).clamp_min(1e-6)

    def prepared(idx: Indices) -> Batch:
        windows, owner = _stack(features, idx)
        return ((windows - mean) / std).to(device), window_targets(data, idx, owner).to(device)

    hidden = config.hidden_dim if config.mlp else 0
    cfg = HeadConfig(features.dim, len(data.labels), hidden, head_task(data.task))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        head = TaggerHead(cfg).to(device)
    valid = prepared(fold.valid) if len(fold.valid) else None
    epochs = _train(head, prepared(fold.train), valid, config)
    head = head.cpu().eval()
    fold_standardisation(head, mean, std)
    return head, epochs


def predict_clips(head: nn.Module, features: Features, idx: Indices, task: str) -> np.ndarray:
    """Clip-level probabilities: the mean over each clip's windows of sigmoid (multilabel, soft)
    or softmax (multiclass) window outputs, float64 [len(idx), n_labels]."""
    x, owner = _stack(features, np.asarray(idx, dtype=np.int64))
    with torch.no_grad():
        logits = torch.cat([head(chunk) for chunk in x.split(8192)]).double()
    probs = (logits.softmax(-1) if task == "multiclass" else logits.sigmoid()).numpy()
    sums = np.zeros((len(idx), probs.shape[1]))
    np.add.at(sums, owner, probs)
    return sums / np.bincount(owner, minlength=len(idx))[:, None]


def summarise_folds(folds: list[FoldResult]) -> dict[str, tuple[float, float]]:
    """Metric -> (mean, std) over the folds, NaN-skipping (std 0 for a single fold)."""
    keys = folds[0].metrics
    out = {}
    for key in keys:
        values = np.array([f.metrics[key] for f in folds])
        std = float(np.nanstd(values, ddof=1)) if np.isfinite(values).sum() > 1 else 0.0
        out[key] = (float(np.nanmean(values)) if np.isfinite(values).any() else math.nan, std)
    return out


def _check(features: Features, data: LabelledSet, config: LinearEvalConfig) -> None:
    if len(features) != len(data):
        raise DataError(f"{len(features)} feature items for {len(data)} labelled items")
    empty = [str(data.paths[i]) for i, w in enumerate(features.windows) if len(w) == 0]
    if empty:
        raise DataError(f"{len(empty)} items have no windows, e.g. {empty[0]}; drop them")
    if min(config.batch_size, config.max_epochs, config.min_steps_per_epoch) < 1:
        raise ConfigError("batch_size, max_epochs and min_steps_per_epoch must be at least 1")


def run_linear_eval(features: Features, data: LabelledSet, config: LinearEvalConfig) -> EvalResult:
    """Evaluate frozen features with a linear/MLP head over the folds, then fit the final head.

    Runs with `config.threads` torch threads. The final head (EvalResult.checkpoint) is fitted like
    a fold, with the same label fraction, on every non-test item of a given split, or on all
    items under k-fold.

    Raises:
        DataError: features and labels disagree, an item has no windows, or too few groups.
        ConfigError: an invalid split or label fraction setting.
    """
    previous = torch.get_num_threads()
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    try:
        _check(features, data, config)
        folds = score_folds(features, data, config)
        head = final_head(features, data, config)
        summary = summarise_folds(list(folds))
        return EvalResult(config, data.task, data.labels, folds, summary, head)
    finally:
        torch.set_num_threads(previous)


def score_folds(
    features: Features, data: LabelledSet, config: LinearEvalConfig
) -> tuple[FoldResult, ...]:
    """Fit a head per evaluation round and score it on the round's test clips."""
    results = []
    for fold in make_folds(data, config.split_config()):
        head, epochs = fit_head(features, data, fold, config)
        probs = predict_clips(head, features, fold.test, data.task)
        s = score(data.targets[fold.test], probs, data.labels, data.task)
        sizes = {"train": len(fold.train), "valid": len(fold.valid), "test": len(fold.test)}
        results.append(
            FoldResult(fold.name, s.metrics, s.per_label, sizes, epochs, fold.effective_fraction)
        )
    return tuple(results)


def final_head(features: Features, data: LabelledSet, config: LinearEvalConfig) -> Checkpoint:
    """The head to export, fitted on the final split (training.linear.splits.final_split)."""
    final = final_split(data, config.split_config())
    head, epochs = fit_head(features, data, final, config)
    return Checkpoint(
        head_config=head.config,
        head_state={k: v.detach().clone() for k, v in head.state_dict().items()},
        labels=list(data.labels),
        train_config={
            "linear_eval": dataclasses.asdict(config),
            "task": data.task,
            "head": config_to_dict(head.config),
        },
        extra={"epochs": epochs, "train_items": len(final.train), "protocol": PROTOCOL},
        source="clmr-embed linear evaluation",
    )

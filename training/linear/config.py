"""Settings of linear evaluation: the probe (head, optimiser, protocol), its splits, a whole run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from clmr_embed.errors import ConfigError

SPLIT_MODES = ("auto", "given", "kfold")


@dataclass(frozen=True)
class SplitConfig:
    """How items are split into train / early-stopping validation / test."""

    mode: str = "auto"  # "given" (the data's split column), "kfold", or "auto": given if complete
    folds: int = 5  # k of the k-fold
    repeats: int = 1  # k-fold repetitions, each with another shuffle
    seed: int = 0  # seeds the folds, the validation carve and the label-fraction subsets
    label_fraction: float = 1.0  # share of training labels kept (every label keeps an example)
    valid_fraction: float = 0.1  # share of the training groups held out for early stopping

    def __post_init__(self) -> None:
        if self.mode not in SPLIT_MODES:
            raise ConfigError(f"split mode {self.mode!r} is not one of {list(SPLIT_MODES)}")
        if not 0.0 < self.label_fraction <= 1.0:
            raise ConfigError(f"label_fraction must be in (0, 1], got {self.label_fraction}")
        if not 0.0 <= self.valid_fraction < 1.0:
            raise ConfigError(f"valid_fraction must be in [0, 1), got {self.valid_fraction}")
        if self.folds < 2 or self.repeats < 1:
            raise ConfigError(f"need folds >= 2 and repeats >= 1, got {self.folds}, {self.repeats}")


@dataclass(frozen=True)
class LinearEvalConfig:
    """Head, optimiser and protocol of `clmr-embed train linear` (defaults: CLMR v2, §6)."""

    mlp: bool = False  # False: Linear(dim, n) as CLMR; True: dim -> hidden -> ReLU -> n
    hidden_dim: int = 512  # MLP width
    lr: float = 1e-3  # Adam learning rate
    weight_decay: float = 1e-4  # Adam L2 weight decay
    batch_size: int = 256  # windows per optimiser step (at most; see min_steps_per_epoch)
    min_steps_per_epoch: int = 10  # small sets get smaller batches, else the head underfits
    max_epochs: int = 200  # upper bound on epochs
    patience: int = 10  # epochs without a lower validation loss before stopping
    label_fraction: float = 1.0  # share of training labels used (every label keeps an example)
    folds: int = 5  # k of the grouped stratified k-fold (when no given split is used)
    repeats: int = 1  # k-fold repetitions with fresh shuffles
    split: str = "auto"  # "given", "kfold", or "auto" (given when every item has a split)
    valid_fraction: float = 0.1  # share of training groups held out for early stopping
    seed: int = 0  # seeds splits, subsets, head init and batch order
    standardise: bool = False  # z-score features with training statistics (CLMR does not)
    device: str = "cpu"  # torch device for the head ("cuda" helps only for very large sets)
    threads: int = 1  # torch CPU threads while fitting: heads are tiny, more threads only contend

    def split_config(self) -> SplitConfig:
        """The split part of this config."""
        return SplitConfig(
            self.split,
            self.folds,
            self.repeats,
            self.seed,
            self.label_fraction,
            self.valid_fraction,
        )


@dataclass(frozen=True, kw_only=True)
class LinearRunConfig:
    """What `run_linear` (`clmr-embed train linear`) reads and writes."""

    encoder: str  # model name, encoder/tagger .onnx, checkpoint, "mfcc" or "random"
    labels: Path  # manifest, class folders, or an MTAT folder (see training.linear.labels)
    output_dir: Path  # run folder: report, head.pt, the tagger ONNX, summary.json
    probe: LinearEvalConfig = field(default_factory=LinearEvalConfig)  # head and protocol; its
    #   label_fraction is replaced by each entry of `fractions`
    fractions: tuple[float, ...] = (1.0,)  # label fractions to evaluate, one result each
    name: str | None = None  # tagger name; None: the run folder's name
    tagger: bool = True  # compose <name>-tagger.onnx (False: scores and head only, e.g. a gate)

    def __post_init__(self) -> None:
        bad = [f for f in self.fractions if not 0.0 < f <= 1.0]
        if not self.fractions or bad:
            raise ConfigError(f"label fractions must lie in (0, 1], got {list(self.fractions)}")

"""Settings of the supervised baseline: its optimiser and steps, the splits, a whole run."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from clmr_embed.errors import ConfigError
from training.config import EncoderConfig
from training.linear.config import SplitConfig


@dataclass(frozen=True)
class SupervisedConfig:
    """How one SampleCNN + head is trained per evaluation round (`train supervised`)."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)  # SampleCNN shape (CLMR's)
    splits: SplitConfig = field(default_factory=SplitConfig)  # the same rounds as `train linear`
    max_steps: int = 10_000  # optimiser steps per round (one crop per item per batch slot)
    batch_size: int = 48  # clips per step (CLMR's batch), one random crop each
    lr: float = 3e-4  # Adam learning rate (CLMR's supervised baseline)
    weight_decay: float = 1e-6  # Adam L2 weight decay
    eval_every: int = 500  # steps between validation losses; the lowest one's weights are kept
    checkpoint_every: int = 500  # steps between saves of latest.pt (--resume continues there)
    valid_windows: int = 1024  # at most this many windows of the validation clips are scored
    device: str = "cpu"  # torch device ("cuda" for real data sets; "auto": CUDA if present)

    def __post_init__(self) -> None:
        counts = (self.max_steps, self.batch_size, self.eval_every, self.checkpoint_every)
        if min(*counts, self.valid_windows) < 1:
            raise ConfigError(
                "max_steps, batch_size, eval_every, checkpoint_every and valid_windows must be "
                f"at least 1, got {counts} and {self.valid_windows}"
            )
        if not self.lr > 0 or self.weight_decay < 0:
            raise ConfigError(
                f"need lr > 0 and weight_decay >= 0, got {self.lr}, {self.weight_decay}"
            )

    @property
    def label_fraction(self) -> float:
        """Share of training labels used (the report's key of a result)."""
        return self.splits.label_fraction

    def at_fraction(self, fraction: float) -> SupervisedConfig:
        """These settings with another label fraction."""
        return dataclasses.replace(
            self, splits=dataclasses.replace(self.splits, label_fraction=fraction)
        )


@dataclass(frozen=True, kw_only=True)
class SupervisedRunConfig:
    """What `run_supervised` (`clmr-embed train supervised`) reads and writes."""

    labels: Path  # manifest, class folders, or an MTAT folder (see training.linear.labels)
    output_dir: Path  # run folder: report, per-round checkpoints, the tagger ONNX, summary.json
    train: SupervisedConfig = field(default_factory=SupervisedConfig)  # its label_fraction is
    #   replaced by each entry of `fractions`
    fractions: tuple[float, ...] = (1.0,)  # label fractions to train at, one result each
    name: str | None = None  # tagger name; None: the run folder's name
    resume: bool = False  # continue each round from its latest.pt (finished rounds are kept)
    tagger: bool = True  # export <name>-tagger.onnx (False: scores and model.pt only, e.g. a grid)
    progress: bool = True  # the audio cache's tqdm bar on stderr (off in `--no-progress` grids)

    def __post_init__(self) -> None:
        bad = [f for f in self.fractions if not 0.0 < f <= 1.0]
        if not self.fractions or bad:
            raise ConfigError(f"label fractions must lie in (0, 1], got {list(self.fractions)}")

"""`clmr-embed train supervised`: options in, training.supervised.run.run_supervised, rendered."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from clmr_embed.choices import Device
from clmr_embed.cli.linear import (
    FoldsOpt,
    FractionsOpt,
    JsonOpt,
    LabelsOpt,
    NameOpt,
    RepeatsOpt,
    Split,
    SplitOpt,
    render,
)
from clmr_embed.cli.options import handle_errors, options_command, require


def _positive(value: float) -> float:
    if not value > 0:  # NaN fails too
        raise typer.BadParameter(f"must be positive, got {value}")
    return value


@dataclass(frozen=True)
class SupervisedOptions:
    """The command line of `clmr-embed train supervised`; each field's help is its option's."""

    labels: LabelsOpt
    output_dir: Annotated[Path, typer.Option(help="Run folder: rounds, report, model, tagger.")]
    label_fraction: FractionsOpt = None
    max_steps: Annotated[int, typer.Option(min=1, help="Optimiser steps per round.")] = 10_000
    batch_size: Annotated[int, typer.Option(min=1, help="Clips per step.")] = 48
    lr: Annotated[float, typer.Option(callback=_positive, help="Adam learning rate.")] = 3e-4
    eval_every: Annotated[int, typer.Option(min=1, help="Steps between validations.")] = 500
    folds: FoldsOpt = 5
    repeats: RepeatsOpt = 1
    split: SplitOpt = Split.auto
    seed: Annotated[int, typer.Option(min=0, help="Seed of splits, init and crops.")] = 0
    device: Annotated[Device, typer.Option(help="Where to train (auto: CUDA if present).")] = (
        Device.auto
    )
    resume: Annotated[bool, typer.Option(help="Continue each round from its latest.pt.")] = False
    name: NameOpt = None
    as_json: JsonOpt = False


@handle_errors
@options_command(SupervisedOptions)
def supervised_command(options: SupervisedOptions) -> None:
    """Fully supervised SampleCNN baseline: metrics, report, model and a tagger ONNX."""
    require("export", "train supervised")
    from export.linear import LinearExport
    from training.linear.config import SplitConfig
    from training.supervised.config import SupervisedConfig, SupervisedRunConfig
    from training.supervised.run import run_supervised

    splits = SplitConfig(options.split.value, options.folds, options.repeats, options.seed)
    train = SupervisedConfig(
        splits=splits,
        max_steps=options.max_steps,
        batch_size=options.batch_size,
        lr=options.lr,
        eval_every=options.eval_every,
        checkpoint_every=options.eval_every,
        device=options.device.value,
    )
    config = SupervisedRunConfig(
        labels=options.labels,
        output_dir=options.output_dir,
        train=train,
        fractions=tuple(options.label_fraction or (1.0,)),
        name=options.name,
        resume=options.resume,
    )
    result = run_supervised(config, LinearExport())
    if options.as_json:
        typer.echo(json.dumps(result.to_dict()))
        return
    render(result, options.output_dir)

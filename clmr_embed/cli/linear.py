"""`clmr-embed train linear`: options in, training.linear.run.run_linear, its result rendered."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from clmr_embed.cli.options import handle_errors, options_command, require

if TYPE_CHECKING:  # annotations only: torch must not load before `require` has checked it
    from training.linear.run import LinearResult

# Summary entries that count labels and clips rather than score them: not shown per fraction.
COUNTS = ("labels_scored", "labels_skipped", "clips_skipped")


class Split(StrEnum):
    """How clips are split for the probe."""

    auto = "auto"  # the labels' own split column when present, else k-fold
    given = "given"
    kfold = "kfold"


def fractions_option(values: list[float] | None) -> list[float] | None:
    """The --label-fraction callback: every value in (0, 1] (also `train supervised`'s)."""
    bad = [v for v in values or [] if not 0.0 < v <= 1.0]
    if bad:
        raise typer.BadParameter(f"label fractions must lie in (0, 1], got {bad[0]}")
    return values


# The options `train linear` and `train supervised` share: the same labels, rounds and fractions.
LabelsOpt = Annotated[Path, typer.Option(help="Manifest CSV/TSV, class folders, or MTAT folder.")]
FractionsOpt = Annotated[
    list[float] | None,
    typer.Option(callback=fractions_option, help="Share of training labels; repeat for several."),
]
FoldsOpt = Annotated[int, typer.Option(min=2, help="k of the grouped k-fold.")]
RepeatsOpt = Annotated[int, typer.Option(min=1, help="k-fold repetitions.")]
SplitOpt = Annotated[Split, typer.Option(help="Which split the evaluation rounds use.")]
NameOpt = Annotated[str | None, typer.Option(help="Tagger name (default: run folder).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Summary as JSON on stdout.")]


@dataclass(frozen=True)
class LinearOptions:
    """The command line of `clmr-embed train linear`; each field's help is its option's."""

    encoder: Annotated[
        str,
        typer.Option(
            help="Encoder: model name, .onnx file, checkpoint (.pt/.ckpt), mfcc or random."
        ),
    ]
    labels: LabelsOpt
    output_dir: Annotated[Path, typer.Option(help="Run folder: report, head, tagger.")]
    mlp: Annotated[bool, typer.Option(help="One hidden layer (512, ReLU) instead of linear.")] = (
        False
    )
    label_fraction: FractionsOpt = None
    folds: FoldsOpt = 5
    repeats: RepeatsOpt = 1
    split: SplitOpt = Split.auto
    seed: Annotated[int, typer.Option(min=0, help="Seed of splits, heads and baselines.")] = 0
    name: NameOpt = None
    as_json: JsonOpt = False


@handle_errors
@options_command(LinearOptions)
def linear_command(options: LinearOptions) -> None:
    """Linear evaluation on frozen embeddings: metrics, report, head and a tagger ONNX."""
    require("export", "train linear")
    from export.linear import LinearExport
    from training.linear.config import LinearEvalConfig, LinearRunConfig
    from training.linear.run import run_linear

    probe = LinearEvalConfig(
        mlp=options.mlp,
        folds=options.folds,
        split=options.split.value,
        repeats=options.repeats,
        seed=options.seed,
    )
    config = LinearRunConfig(
        encoder=options.encoder,
        labels=options.labels,
        output_dir=options.output_dir,
        probe=probe,
        fractions=tuple(options.label_fraction or (1.0,)),
        name=options.name,
    )
    result = run_linear(config, LinearExport())
    if options.as_json:
        typer.echo(json.dumps(result.to_dict()))
        return
    render(result, options.output_dir)


def render(result: LinearResult, output_dir: Path) -> None:
    """One line of mean ± std scores per label fraction on stdout; where the files are on stderr."""
    from clmr_embed.cli.render import err, out

    for run in result.results:
        shown = ", ".join(
            f"{metric} {mean:.3f}±{std:.3f}"
            for metric, (mean, std) in run.summary.items()
            if metric not in COUNTS
        )
        out.print(f"label fraction {run.config.label_fraction:g}: {shown}")
    err.print(f"[green]done:[/] report and tagger in {escape(str(output_dir))}")

"""`clmr-embed train experiment`: a spec's grid of cells run (cached, resumable), then reported."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from clmr_embed.cli.options import handle_errors, options_command, require


class Scale(StrEnum):
    """How large every cell runs."""

    full = "full"  # as the spec says
    small = "small"  # the real encoder, 1/10 of the steps, 1/8 of the batch: <= 30 min a spec
    tiny = "tiny"  # narrow encoder, few steps, small batches, few files: minutes on a CPU


def _data_pairs(values: list[str] | None) -> list[str] | None:
    for value in values or []:
        name, sep, path = value.partition("=")
        if not (sep and name.strip() and path.strip()):
            raise typer.BadParameter(f"expected NAME=PATH (free-music=/data/fm), got {value!r}")
    return values


@dataclass(frozen=True)
class ExperimentOptions:
    """The command line of `clmr-embed train experiment`."""

    spec: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, help="Experiment spec (configs/experiments)."),
    ]
    output_dir: Annotated[Path, typer.Option(help="Run folder: cells/, pretrain/, report.*.")]
    scale: Annotated[Scale, typer.Option(help="full; small (<= 30 min); tiny.")] = Scale.full
    data: Annotated[
        list[str] | None,
        typer.Option(callback=_data_pairs, help="NAME=PATH: a [data] corpus; repeat for several."),
    ] = None
    progress: Annotated[bool, typer.Option(help="Progress bars of each cell's work.")] = True


@handle_errors
@options_command(ExperimentOptions)
def experiment_command(options: ExperimentOptions) -> None:
    """Run a grid of pre-training and linear-probe cells; write report.md, report.json, a plot."""
    require("train", "train experiment")
    from clmr_embed.cli.render import err
    from clmr_embed.errors import ConfigError
    from training.experiment.grid import GridOptions, kind_rules, run_grid
    from training.experiment.spec import SpecInputs, load_spec

    data: dict[str, tuple[Path, ...]] = {}
    for value in options.data or []:
        name, _, path = value.partition("=")
        data[name.strip()] = (*data.get(name.strip(), ()), Path(path.strip()))
    try:  # a bad spec is a usage error: exit 2 before any cell runs
        spec = load_spec(options.spec, SpecInputs(kind_rules(), data, options.scale.value))
    except ConfigError as exc:
        raise typer.BadParameter(str(exc), param_hint="SPEC") from None

    def say(line: str) -> None:
        err.print(escape(line), soft_wrap=True)

    result = run_grid(spec, options.output_dir, GridOptions(say=say, progress=options.progress))
    cached = len(result.rows) - len(result.ran)
    err.print(
        f"[green]done:[/] {len(result.rows)} cells ({len(result.ran)} run, {cached} cached); "
        f"report in {escape(str(result.files[0]))}"
    )

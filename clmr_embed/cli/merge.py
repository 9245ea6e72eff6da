"""`clmr-embed merge SHARD... OUT`: join stores of one model into one, resumably."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from clmr_embed.cli.options import JsonOpt, handle_errors, inputs_and_output, sigterm_as_interrupt


@handle_errors
def merge_command(
    paths: Annotated[
        list[Path], typer.Argument(help="Shard stores, then the output store (OUT.h5).")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Merge the stores SHARD... (one model and hop) into OUT.h5; rerun to resume."""
    shards, output = inputs_and_output(paths, "SHARD")
    from clmr_embed.cli.render import ExtractProgress, merge_summary
    from clmr_embed.store import merge_stores

    with sigterm_as_interrupt(), ExtractProgress("merging") as progress:
        report = merge_stores(shards, output, progress=progress)
    merge_summary(report)
    if as_json:
        typer.echo(json.dumps(report.to_dict()))
    raise typer.Exit(report.exit_code)

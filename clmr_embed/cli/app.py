"""The `clmr-embed` Typer app: one command module per group, registered here; `main`."""

from __future__ import annotations

from typing import Annotated

import typer

from clmr_embed import __version__
from clmr_embed.cli.check import check_command
from clmr_embed.cli.export import export_command
from clmr_embed.cli.extract import extract_command
from clmr_embed.cli.filters import filters_command
from clmr_embed.cli.merge import merge_command
from clmr_embed.cli.models import models_command
from clmr_embed.cli.serve import serve_command
from clmr_embed.cli.similar import similar_command
from clmr_embed.cli.tag import tag_command
from clmr_embed.cli.train import train_app

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    help="CLMR music embeddings: embed libraries into HDF5, tag songs, train and export models.",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"clmr-embed {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print version.")
    ] = False,
) -> None:
    """CLMR music embeddings from raw audio."""


app.command("extract", no_args_is_help=True)(extract_command)
app.command("tag", no_args_is_help=True)(tag_command)
app.command("models")(models_command)
app.add_typer(train_app, name="train")
app.command("export", no_args_is_help=True)(export_command)
app.command("filters", no_args_is_help=True)(filters_command)
app.command("similar", no_args_is_help=True)(similar_command)
app.command("serve", no_args_is_help=True)(serve_command)
app.command("check", no_args_is_help=True)(check_command)
app.command("merge", no_args_is_help=True)(merge_command)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="clmr-embed")

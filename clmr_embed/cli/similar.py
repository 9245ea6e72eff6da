"""`clmr-embed similar`: the nearest tracks (or windows) of a store to a stored track or a file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from clmr_embed.cli.options import JsonOpt, ModelOpt, handle_errors


@handle_errors
def similar_command(
    store: Annotated[Path, typer.Argument(help="The HDF5 store made by `clmr-embed extract`.")],
    query: Annotated[
        str, typer.Argument(help="A stored track (relative path or id) or an audio file.")
    ],
    top_k: Annotated[int, typer.Option(min=1, help="How many neighbours to list.")] = 10,
    windows: Annotated[
        bool, typer.Option("--windows", help="Nearest single windows, with their times.")
    ] = False,
    model: ModelOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Nearest tracks (or windows) to QUERY, by cosine of centred, L2-normalised embeddings."""
    from clmr_embed.cli.render import err
    from clmr_embed.search import SearchConfig, similar

    def building(level: str, rows: int) -> None:
        err.print(
            f"building the similarity index of {rows} {level} (once; cached beside the store)"
        )

    result = similar(store, query, top_k, windows, model, SearchConfig(on_build=building))
    if as_json:
        typer.echo(json.dumps(result.to_dict()))
        return
    _print_table(result.to_dict())


def _print_table(result: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    from clmr_embed.cli.render import out

    where = (
        "stored track" if result["source"] == "store" else "file, embedded with the store's model"
    )
    out.print(f"[bold]{escape(result['query'])}[/]  [dim]({where}; {result['backend']})[/]")
    table = Table(show_edge=False)
    for column in ("#", "score", "track") + (("start s",) if result["level"] == "windows" else ()):
        table.add_column(column, justify="right" if column != "track" else "left")
    for rank, item in enumerate(result["neighbours"], 1):
        row = [str(rank), f"{item['score']:.3f}", escape(item["relpath"])]
        if "start_s" in item:
            row.append(f"{item['start_s']:.1f}")
        table.add_row(*row)
    out.print(table)

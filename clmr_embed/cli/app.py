"""The `clmr-embed` command line: extract, tag, models (runtime) plus train and export (lazy)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from clmr_embed import __version__
from clmr_embed.cli.export import export_command
from clmr_embed.cli.options import DeviceOpt, JsonOpt, ModelOpt, ThreadsOpt, handle_errors
from clmr_embed.cli.serve import serve_command
from clmr_embed.cli.similar import similar_command
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


def resolve_or_fetch(model: str | None) -> str:
    """A model path for --model, fetching and converting a downloadable model on first use."""
    from clmr_embed.registry import ModelNotCachedError, resolve_model

    try:
        return str(resolve_model(model))
    except ModelNotCachedError as exc:
        from clmr_embed.cli.render import err

        err.print(f"fetching {exc.entry.name} (once; it is cached afterwards) ...")
        try:
            from export.release import fetch_and_convert
        except ImportError:
            raise exc from None
        return str(fetch_and_convert(exc.entry))


@app.command(no_args_is_help=True)
@handle_errors
def extract(
    paths: Annotated[
        list[Path], typer.Argument(help="Audio files/folders, then the output store (OUT.h5).")
    ],
    model: ModelOpt = None,
    hop_seconds: Annotated[
        float | None, typer.Option(help="Hop between windows; default: the model's window.")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Windows per model call.")] = 16,
    workers: Annotated[int, typer.Option(min=0, help="Decode processes (0: in-process).")] = 1,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = 0,
    force: Annotated[bool, typer.Option(help="Start OUT afresh if made by another model.")] = False,
    prune: Annotated[bool, typer.Option(help="Remove stored tracks whose files are gone.")] = False,
    include: Annotated[list[str] | None, typer.Option(help="Only files matching glob.")] = None,
    exclude: Annotated[list[str] | None, typer.Option(help="Skip files matching glob.")] = None,
    backend: Annotated[str, typer.Option(help="Decoder: av (FFmpeg) or soundfile.")] = "av",
    commit_every: Annotated[
        int, typer.Option(min=1, help="Merge finished tracks into OUT every N tracks.")
    ] = 200,
    as_json: JsonOpt = False,
) -> None:
    """Embed every audio file under INPUT... into one resumable HDF5 store OUT.h5."""
    if len(paths) < 2:
        raise typer.BadParameter("give at least one input and the output store: INPUT... OUT.h5")
    *inputs, output = paths
    if output.suffix.lower() not in (".h5", ".hdf5") or output.is_dir():
        raise typer.BadParameter(f"the last argument must be the output .h5 store, got {output}")
    from clmr_embed.cli.render import ExtractProgress, extract_summary
    from clmr_embed.extract import ExtractConfig, run_extract

    trace = os.environ.get("CLMR_EMBED_TRACE")
    config = ExtractConfig(
        inputs=tuple(inputs),
        output=output,
        model=resolve_or_fetch(model),
        hop_seconds=hop_seconds,
        batch_size=batch_size,
        workers=workers,
        device=device,
        threads=threads,
        force=force,
        prune=prune,
        include=tuple(include or ()),
        exclude=tuple(exclude or ()),
        backend=backend,
        commit_every=commit_every,
        trace=Path(trace) if trace else None,
    )
    with ExtractProgress() as progress:
        summary = run_extract(config, progress=progress).to_dict()
    extract_summary(summary)
    if as_json:
        typer.echo(json.dumps(summary))
    raise typer.Exit(summary["exit_code"])


@app.command(no_args_is_help=True)
@handle_errors
def tag(
    audio: Annotated[list[Path], typer.Argument(help="Audio files or folders.")],
    model: ModelOpt = None,
    top_k: Annotated[int, typer.Option(min=1, help="How many tags to show.")] = 10,
    segments: Annotated[bool, typer.Option(help="Add per-window scores (a taggram).")] = False,
    hop_seconds: Annotated[float | None, typer.Option(help="Hop between windows.")] = None,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = 0,
    as_json: JsonOpt = False,
) -> None:
    """Top tags with scores for each song, through onnxruntime."""
    from clmr_embed.cli.tag import TagOptions, run_tag

    options = TagOptions(top_k, segments, hop_seconds, device, threads, as_json)
    raise typer.Exit(run_tag(audio, resolve_or_fetch(model), options))


@app.command()
@handle_errors
def models(as_json: JsonOpt = False) -> None:
    """List registered model names, their source, licence and whether they are available."""
    from clmr_embed.registry import DEFAULT_MODEL, MODELS, bundled_path, cached_path, is_available

    default = os.environ.get("CLMR_EMBED_MODEL") or DEFAULT_MODEL
    rows = []
    for entry in sorted(MODELS.values(), key=lambda e: e.name != default):
        where = bundled_path(entry) if entry.bundled else cached_path(entry.name)
        rows.append(
            {
                "name": entry.name,
                "default": entry.name == default,
                "trained": entry.trained,
                "source": "bundled" if entry.bundled else "download (official CLMR release)",
                "available": is_available(entry),
                "path": str(where),
                "licence": entry.licence,
                "description": entry.description,
            }
        )
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row))
        return
    from rich.table import Table

    from clmr_embed.cli.render import out

    table = Table(show_edge=False)
    for column in ("name", "source", "available", "licence", "description"):
        table.add_column(column, overflow="fold")
    for row in rows:
        name = row["name"] + (" (default)" if row["default"] else "")
        status = "yes" if row["available"] else "no (fetched on first use)"
        table.add_row(name, row["source"], status, row["licence"], row["description"])
    out.print(table)


app.add_typer(train_app, name="train")
app.command("export", no_args_is_help=True)(export_command)
app.command("similar", no_args_is_help=True)(similar_command)
app.command("serve", no_args_is_help=True)(serve_command)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="clmr-embed")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

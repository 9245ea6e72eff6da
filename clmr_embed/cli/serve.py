"""`clmr-embed serve`: the local web app over a store (bound to loopback unless told otherwise)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from clmr_embed.cli.options import ModelOpt, handle_errors
from clmr_embed.errors import MissingDependencyError


@handle_errors
def serve_command(
    store: Annotated[Path, typer.Argument(help="The HDF5 store made by `clmr-embed extract`.")],
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    host: Annotated[
        str, typer.Option(help="Interface to bind; anything but loopback exposes the library.")
    ] = "127.0.0.1",
    root: Annotated[
        list[Path] | None,
        typer.Option(
            help="Folder holding the store's relative paths (repeatable); default: the "
            "folders the store recorded at extract."
        ),
    ] = None,
    model: ModelOpt = None,
) -> None:
    """Explore a store in the browser: map, tags, neighbours, units, upload (local only)."""
    for folder in root or ():
        if not folder.is_dir():
            raise typer.BadParameter(f"{folder} is not a folder", param_hint="--root")
    from clmr_embed.cli.render import err, warn

    try:
        import uvicorn

        from clmr_embed.serve import ServeConfig, create_app
        from clmr_embed.store import open_store
    except ImportError as exc:
        raise MissingDependencyError(
            f"clmr-embed serve needs the serve extra ({exc.name} is missing): "
            "pip install 'clmr-embed[serve]'"
        ) from None

    if host not in ("127.0.0.1", "localhost", "::1"):
        warn(f"--host {host}: the library and its audio are reachable from other machines")
    config = ServeConfig(
        store=store,
        roots=tuple(root or ()),
        model=model,
        host=host,
        port=port,
    )
    err.print("preparing the library (map, tags) ...")
    opened = open_store(store)
    if not root and not opened.roots:
        warn(
            "the store records no library folders to play audio from (stores made before "
            "clmr-embed recorded them); "
            "pass --root with the folder(s) given to extract"
        )
    app = create_app(config, opened)
    shown = f"[{host}]" if ":" in host else host
    err.print(f"[green]serving[/] http://{shown}:{port}/  (Ctrl-C stops)")
    uvicorn.run(app, host=host, port=port, log_level="warning")

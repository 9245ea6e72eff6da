"""`clmr-embed check STORE`: verify every track's checksums; optionally compact the segments."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from clmr_embed.cli.options import JsonOpt, handle_errors


@handle_errors
def check_command(
    store: Annotated[Path, typer.Argument(help="The store (OUT.h5) to verify.")],
    compact: Annotated[
        bool, typer.Option(help="First merge its segment files into as few as possible.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Read every track of STORE, verifying checksums; exit 1 listing the damaged ones."""
    from clmr_embed.cli.render import err, out, safe
    from clmr_embed.store import check_store, compact_store

    if compact:
        done = compact_store(store)
        err.print(
            f"compacted: {done.segments_before} -> {done.segments_after} segments, "
            f"{done.bytes_written / 1e6:.1f} MB written in {done.wall_s:.1f} s"
        )
    report = check_store(store)
    if as_json:
        typer.echo(json.dumps(report.to_dict()))
        raise typer.Exit(report.exit_code)
    where = f"schema {report.schema}, generation {report.generation}, {report.segments} segments"
    verdict = f"{len(report.damaged)} damaged" if report.damaged else "all intact"
    out.print(
        f"{report.tracks} tracks checked in {safe(report.store)} ({where}): {verdict}",
        soft_wrap=True,
    )
    for track in report.damaged:
        line = f"  [red]damaged[/] {safe(track.relpath)}: {safe(track.reason)}"
        out.print(line, soft_wrap=True)
    if report.damaged:
        err.print("rerun clmr-embed extract on the library to re-embed them", soft_wrap=True)
    raise typer.Exit(report.exit_code)

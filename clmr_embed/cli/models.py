"""`clmr-embed models`: the registered model names, their source, licence and availability."""

from __future__ import annotations

import json
import os
from typing import Any

import typer

from clmr_embed.cli.options import JsonOpt, handle_errors


def model_rows() -> list[dict[str, Any]]:
    """One row per registered model, the default first (the `--json` lines)."""
    from clmr_embed.registry import (
        DEFAULT_MODEL,
        ENV_MODEL,
        MODELS,
        bundled_path,
        cached_path,
        is_available,
    )

    default = os.environ.get(ENV_MODEL) or DEFAULT_MODEL
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
    return rows


@handle_errors
def models_command(as_json: JsonOpt = False) -> None:
    """List registered model names, their source, licence and whether they are available."""
    rows = model_rows()
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row))
        return
    from clmr_embed.cli.render import models_table

    models_table(rows)

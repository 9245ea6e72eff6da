"""Fetch an official CLMR release (encoder + head), check it, convert it to our ONNX tagger."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from clmr_embed.atomic import atomic_path
from clmr_embed.registry import ModelEntry, cache_dir, cached_path, download_assets
from export.api import ExportConfig, run_export


def fetch_and_convert(entry: ModelEntry) -> Path:
    """Download `entry`'s assets once, export them, and install the tagger in the cache.

    The encoder's structure (the 77 official keys and shapes) is checked on import and the
    head's sha256 against the known release file; the ONNX file records the source sha256.

    Returns:
        The cached ONNX tagger, e.g. ~/.cache/clmr-embed/models/clmr-mtat.onnx.
    """
    target = cached_path(entry.name)
    if target.is_file():
        return target
    downloads = cache_dir() / "downloads" / entry.name
    encoder, head = download_assets(entry, downloads)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        config = ExportConfig(
            checkpoint=encoder,
            head=head,
            output_dir=Path(tmp),
            name=entry.name,
            licence=entry.licence,
        )
        run_export(config)
        with atomic_path(target) as installed:
            os.replace(Path(tmp) / f"{entry.name}-tagger.onnx", installed)
    return target

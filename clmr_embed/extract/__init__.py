"""`clmr-embed extract` as a library: plan, decode workers, packed batches, the store, a summary."""

from clmr_embed.extract.config import ExtractConfig
from clmr_embed.extract.run import run_extract
from clmr_embed.extract.summary import (
    ExtractSummary,
    FailedFile,
    FlaggedFile,
    Interrupted,
    SkippedPath,
)
from clmr_embed.progress import Progress

__all__ = [
    "ExtractConfig",
    "ExtractSummary",
    "FailedFile",
    "FlaggedFile",
    "Interrupted",
    "Progress",
    "SkippedPath",
    "run_extract",
]

"""The progress protocol long runs report to (the CLI draws a rich bar; None is silent)."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Where a run over tracks reports: how many there are, then each one as it is done."""

    def start(self, total_files: int) -> None: ...
    def advance(self, relpath: str, duration_s: float) -> None: ...

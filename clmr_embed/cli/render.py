"""The CLI's console: progress bars, tag and model tables, summaries (stderr unless a result)."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from clmr_embed.extract import ExtractSummary
from clmr_embed.names import shown
from clmr_embed.store import MergeReport

err = Console(stderr=True, highlight=False)
out = Console(highlight=False)
SHOWN_SKIPPED = 20  # skipped paths listed on stderr; --json has them all


def safe(text: str) -> str:
    """Text for rich markup: names.shown (control characters, bad bytes), then markup escaped."""
    return escape(shown(text))


def error(message: str) -> None:
    """One red line on stderr."""
    err.print(f"[bold red]error:[/] {safe(message)}", soft_wrap=True)


def warn(message: str) -> None:
    """One yellow line on stderr."""
    err.print(f"[yellow]warning:[/] {safe(message)}", soft_wrap=True)


def show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """`warnings.showwarning` for the CLI: the message alone, as `warn` prints it (the
    signature is the stdlib hook's)."""
    warn(str(message))


class ExtractProgress:
    """A rich bar over files with audio hours and the speed in x real time."""

    def __init__(self, verb: str = "embedding") -> None:
        self.bar = Progress(
            TextColumn(f"[bold]{verb}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("files"),
            TextColumn("{task.fields[hours]:.2f} h audio"),
            TextColumn("{task.fields[speed]:.0f}x real time"),
            TimeElapsedColumn(),
            console=err,
            transient=False,
        )
        self.task: Any = None
        self.duration_s = 0.0
        self.began = time.perf_counter()

    def __enter__(self) -> ExtractProgress:
        return self  # the bar appears at start(), so early errors print no empty bar

    def __exit__(self, *exc: object) -> None:
        if self.task is not None:
            self.bar.stop()

    def start(self, total_files: int) -> None:
        self.bar.start()
        self.began = time.perf_counter()
        self.task = self.bar.add_task("extract", total=total_files, hours=0.0, speed=0.0)

    def advance(self, relpath: str, duration_s: float) -> None:
        self.duration_s += duration_s
        speed = self.duration_s / max(time.perf_counter() - self.began, 1e-9)
        self.bar.update(self.task, advance=1, hours=self.duration_s / 3600, speed=speed)


def extract_summary(summary: ExtractSummary) -> None:
    """The end-of-run summary on stderr."""
    damage = f", {len(summary.damaged)} damaged, {summary.repaired} repaired"
    line = (
        f"{summary.embedded} embedded, {summary.unchanged} unchanged, "
        f"{summary.aliased} duplicates, {len(summary.failed)} failed, "
        f"{len(summary.flagged)} flagged, {len(summary.skipped)} skipped"
        f"{damage if summary.damaged else ''}; "
        f"{summary.duration_s / 3600:.2f} h audio in "
        f"{summary.wall_s:.1f} s ({summary.x_realtime:.0f}x real time, "
        f"{summary.engine} {summary.precision}{_workers(summary)}) -> {summary.store}"
    )
    err.print(("[green]done:[/] " if not summary.exit_code else "[red]done:[/] ") + safe(line))
    if summary.store_error:
        error(summary.store_error)
    for failed in summary.failed:
        err.print(f"  [red]failed[/] {safe(failed.reason)}", soft_wrap=True)
    for flagged in summary.flagged:
        err.print(f"  [yellow]flagged[/] {safe(flagged.path)}: {', '.join(flagged.flags)}")
    for skipped in summary.skipped[:SHOWN_SKIPPED]:
        err.print(f"  [dim]skipped[/] {safe(skipped.reason)}", soft_wrap=True)
    if len(summary.skipped) > SHOWN_SKIPPED:
        err.print(f"  ... {len(summary.skipped) - SHOWN_SKIPPED} more skipped (see --json)")
    if summary.missing:
        verb = "pruned" if summary.pruned else "missing (use --prune to remove)"
        names = safe(", ".join(summary.missing[:5]))
        err.print(f"  {len(summary.missing)} stored tracks {verb}: {names}")
    if not summary.model_trained:
        warn(f"model {summary.model_name!r} is UNTRAINED: embeddings are not meaningful")


def _workers(summary: ExtractSummary) -> str:
    """ ", 2 decode workers (auto)"; nothing where none ran (in-process, or Ray's tasks)."""
    if not summary.workers:
        return ""
    plural = "s" if summary.workers > 1 else ""
    return f", {summary.workers} decode worker{plural}{' (auto)' if summary.workers_auto else ''}"


def merge_summary(report: MergeReport) -> None:
    """The end-of-merge summary on stderr."""
    line = (
        f"{report.merged} merged ({report.replaced} replacing another shard's), "
        f"{report.aliased} duplicates, {report.unchanged} unchanged, {report.failed} failed "
        f"carried over, {len(report.damaged)} damaged; {len(report.shards)} shards in "
        f"{report.wall_s:.1f} s -> {report.store}"
    )
    err.print(("[green]done:[/] " if not report.exit_code else "[red]done:[/] ") + safe(line))
    for _, reason in report.damaged:
        err.print(f"  [red]damaged[/] {safe(reason)}", soft_wrap=True)


def tag_table(path: str, model: str, trained: bool, tags: list[tuple[str, float]]) -> None:
    """Top tags of one file as a rich table on stdout."""
    status = "" if trained else ", UNTRAINED"
    out.print(f"[bold]{safe(path)}[/]  [dim]({safe(model)}{status})[/]", soft_wrap=True)
    table = Table(show_edge=False)
    table.add_column("tag")
    table.add_column("score", justify="right")
    table.add_column("", min_width=20)
    for label, score in tags:
        table.add_row(safe(label), f"{score:.3f}", "█" * round(score * 20))
    out.print(table)


def models_table(rows: list[dict[str, Any]]) -> None:
    """The registered models (rows of `clmr-embed models --json`) as a rich table on stdout."""
    table = Table(show_edge=False)
    for column in ("name", "source", "available", "licence", "description"):
        table.add_column(column, overflow="fold")
    for row in rows:
        name = row["name"] + (" (default)" if row["default"] else "")
        status = "yes" if row["available"] else "no (fetched on first use)"
        table.add_row(name, row["source"], status, row["licence"], row["description"])
    out.print(table)

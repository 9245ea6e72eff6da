"""`run_grid`: every cell of a spec in turn, cached by its hash (a rerun resumes); the report."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from clmr_embed.atomic import write_text
from training.experiment.cells import DONE, RUNNERS, CellContext, CellKind, CellScores
from training.experiment.report import CellRow, write_experiment_report
from training.experiment.spec import Cell, KindRule, Spec


def kind_rules(runners: Mapping[str, CellKind] = RUNNERS) -> dict[str, KindRule]:
    """The spec parser's view of a runner registry."""
    return {kind: entry.rule for kind, entry in runners.items()}


@dataclass(frozen=True)
class GridOptions:
    """How `run_grid` runs its cells."""

    runners: Mapping[str, CellKind] = field(default_factory=lambda: RUNNERS)  # kind -> runner;
    #   tests inject their own (the spec must have been loaded with the same kinds)
    say: Callable[[str], None] = lambda line: None  # one progress line ("cell 2/5 ...")
    progress: bool = False  # tqdm bars of pre-training and decoding on stderr


@dataclass(frozen=True)
class GridResult:
    """What `run_grid` did."""

    rows: tuple[CellRow, ...]  # one per cell, in spec order
    ran: tuple[str, ...]  # names of the cells run now (the others came from the cache)
    files: tuple[Path, ...]  # report.md, report.json and the plots


def cell_dir(run_dir: Path, cell: Cell) -> Path:
    """RUN/cells/<hash of the resolved cell>."""
    return run_dir / "cells" / cell.key()


def run_grid(spec: Spec, run_dir: Path, options: GridOptions | None = None) -> GridResult:
    """Run every unfinished cell of `spec` under `run_dir`, then write the report.

    A cell is finished when RUN/cells/<key>/done.json exists (written atomically, last); a
    rerun skips it, and an interrupted pre-training resumes from its latest.pt.

    Raises:
        Whatever a cell's runner raises (ConfigError, DataError, ...); finished cells stay done.
    """
    options = options or GridOptions()
    run_dir = Path(run_dir)
    rows, ran = [], []
    for i, cell in enumerate(spec.cells, start=1):
        folder = cell_dir(run_dir, cell)
        marker = folder / DONE
        head = f"cell {i}/{len(spec.cells)} {cell.name!r} ({cell.kind}, {cell.key()})"
        if marker.is_file():
            options.say(f"{head}: done before, cached")
            scores = CellScores.from_dict(json.loads(marker.read_text())["scores"])
        else:
            options.say(f"{head}: running")
            scores = _run_cell(cell, run_dir, folder, options)
            ran.append(cell.name)
        rows.append(CellRow(cell, scores))
    files = write_experiment_report(run_dir, spec, tuple(rows))
    return GridResult(tuple(rows), tuple(ran), tuple(files))


def _run_cell(cell: Cell, run_dir: Path, folder: Path, options: GridOptions) -> CellScores:
    folder.mkdir(parents=True, exist_ok=True)
    write_text(folder / "cell.json", json.dumps(cell.resolved(), indent=2))
    context = CellContext(folder, run_dir / "pretrain" / cell.pretrain_key(), options.progress)
    scores = options.runners[cell.kind].run(cell, context)
    payload = {"name": cell.name, "cell": cell.resolved(), "scores": scores.to_dict()}
    write_text(folder / DONE, json.dumps(payload, indent=2, allow_nan=False))
    return scores

"""One cell: pre-train (cached, resumable) then probe, or probe a baseline; the kind registry."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clmr_embed.atomic import write_text
from clmr_embed.errors import ConfigError
from training.checkpoint import Checkpoint, save_checkpoint
from training.config import EncoderConfig
from training.experiment.spec import Cell, KindRule
from training.linear.baselines import audio_windows, random_encoder_checkpoint
from training.linear.config import LinearRunConfig
from training.linear.dataset import keep_existing
from training.linear.labels import read_labels
from training.linear.run import run_linear
from training.pretrain.config import PretrainConfig

DONE = "done.json"  # a finished cell's (or pre-training's) marker, holding its result


@dataclass(frozen=True)
class CellContext:
    """Where a cell works."""

    cell_dir: Path  # RUN/cells/<cell key>: the probe's report, the marker
    pretrain_dir: Path  # RUN/pretrain/<pretrain key>: shared by cells with one pre-training
    progress: bool  # tqdm bars of pre-training and decoding on stderr


@dataclass(frozen=True)
class CellScores:
    """A finished cell's result (RUN/cells/<key>/done.json)."""

    summary: dict[str, tuple[float, float]]  # metric -> (mean, std over probe folds)
    task: str  # the probe set's task ("multiclass", "multilabel", "soft")
    items: int  # probe items evaluated
    pretrain_steps: int  # optimiser steps of the encoder (0: no pre-training)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (the marker's content)."""
        summary = {k: {"mean": _finite(m), "std": _finite(s)} for k, (m, s) in self.summary.items()}
        return {"summary": summary, "task": self.task, "items": self.items,
                "pretrain_steps": self.pretrain_steps}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CellScores:
        """Read back `to_dict` (NaN scores were stored as null)."""
        summary = {k: (_number(v["mean"]), _number(v["std"])) for k, v in data["summary"].items()}
        return cls(summary, data["task"], data["items"], data["pretrain_steps"])


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None  # strict JSON has no NaN


def _number(value: float | None) -> float:
    return float("nan") if value is None else float(value)


Runner = Callable[[Cell, CellContext], CellScores]


@dataclass(frozen=True)
class CellKind:
    """A registered cell kind: how it runs, and what its spec must give."""

    run: Runner  # runs one cell of this kind
    rule: KindRule  # what the spec parser resolves for it


class _NoTagger:
    """The ONNX step of run_linear/run_supervised, never reached: experiment cells set
    tagger=False."""

    def tagger(self, encoder: Path, head: Checkpoint, output: Path, name: str) -> Path:
        raise AssertionError("experiment probes compose no tagger")


def probe(cell: Cell, encoder: str, context: CellContext, steps: int = 0) -> CellScores:
    """The cell's linear probe on `encoder` via training.linear.run (features cached by model)."""
    config = LinearRunConfig(
        encoder=encoder,
        labels=cell.probe,
        output_dir=context.cell_dir / "probe",
        probe=cell.linear,
        fractions=(cell.linear.label_fraction,),
        tagger=False,
    )
    result = run_linear(config, _NoTagger())
    first = result.results[0]
    return CellScores(dict(first.summary), first.task, result.items, steps)


def pretrained(cell: Cell, context: CellContext) -> tuple[Path, int]:
    """The cell's pre-trained checkpoint and its steps: cached, resumed, or trained now."""
    from training.pretrain.run import run_pretrain  # torch and the loop only for pretrain cells

    folder = context.pretrain_dir
    marker = folder / DONE
    if marker.is_file():
        done = json.loads(marker.read_text())
        return Path(done["checkpoint"]), int(done["steps"])
    if cell.pretrain is None:
        raise ConfigError(f"cell {cell.name!r} has no pretrain config")
    resume = (folder / "latest.pt").is_file()  # a killed grid continues inside the cell
    result = run_pretrain(
        cell.pretrain, list(cell.data), folder, resume=resume, progress=context.progress
    )
    done = {"checkpoint": str(result.checkpoint), "steps": result.steps}
    write_text(marker, json.dumps(done, indent=2))
    return result.checkpoint, result.steps


def run_pretrain_cell(cell: Cell, context: CellContext) -> CellScores:
    """SimCLR (or the config's `method`) pre-training, then the probe on its latest.pt."""
    checkpoint, steps = pretrained(cell, context)
    return probe(cell, str(checkpoint), context, steps)


def run_model_cell(cell: Cell, context: CellContext) -> CellScores:
    """An existing encoder (a shipped model, an ONNX file, a checkpoint) probed as it is."""
    return probe(cell, cell.model, context)


def run_mfcc_cell(cell: Cell, context: CellContext) -> CellScores:
    """The hand-crafted baseline: MFCC statistics per window (training.linear.baselines)."""
    return probe(cell, "mfcc", context)


def run_random_cell(cell: Cell, context: CellContext) -> CellScores:
    """Random-init SampleCNN of the cell's encoder shape, BatchNorm calibrated on the probe set."""
    channels = cell.pretrain.encoder_channels if cell.pretrain else EncoderConfig().channels
    data, _ = keep_existing(read_labels(cell.probe))
    windows = audio_windows(data.paths, per_file=4)  # as run_linear's own random baseline
    checkpoint = random_encoder_checkpoint(
        windows, EncoderConfig(channels=channels), seed=cell.linear.seed
    )
    path = context.cell_dir / "random-encoder.pt"
    save_checkpoint(path, checkpoint)
    return probe(cell, str(path), context)


def run_supervised_cell(cell: Cell, context: CellContext) -> CellScores:
    """SampleCNN + head trained end to end on the probe set's own labels (`train supervised`).

    The encoder shape, steps and batch size are the cell's pretrain config's (so `--scale tiny`
    shrinks it like the others); the splits and label fraction are the probe's.
    """
    from training.supervised.config import SupervisedConfig, SupervisedRunConfig
    from training.supervised.run import run_supervised  # torch only for supervised cells

    shape = cell.pretrain or PretrainConfig()
    train = SupervisedConfig(
        encoder=EncoderConfig(channels=tuple(shape.encoder_channels)),
        splits=cell.linear.split_config(),
        max_steps=shape.max_steps or SupervisedConfig.max_steps,
        batch_size=shape.batch_size,
        eval_every=max(1, min(SupervisedConfig.eval_every, shape.max_steps // 4 or 1)),
    )
    folder = context.cell_dir / "supervised"
    config = SupervisedRunConfig(
        labels=cell.probe, output_dir=folder, train=train,
        fractions=(cell.linear.label_fraction,), resume=(folder / "rounds").exists(), tagger=False,
        progress=context.progress,
    )  # fmt: skip
    result = run_supervised(config, _NoTagger())
    first = result.results[0]
    return CellScores(dict(first.summary), first.task, result.items, 0)


# The cell kinds `train experiment` knows. Extension point: a kind is a runner plus its rule;
# a spec naming any other kind fails validation ("kind = 'x'; use one of [...]").
RUNNERS: dict[str, CellKind] = {
    "pretrain": CellKind(run_pretrain_cell, KindRule(uses_encoder=True, pretrains=True)),
    "mfcc": CellKind(run_mfcc_cell, KindRule(uses_encoder=False, pretrains=False)),
    "random": CellKind(run_random_cell, KindRule(uses_encoder=True, pretrains=False)),
    "supervised": CellKind(run_supervised_cell, KindRule(uses_encoder=True, pretrains=False)),
    "model": CellKind(run_model_cell, KindRule(False, False, names_model=True)),
}

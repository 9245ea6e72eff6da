"""`clmr-embed train pretrain|linear|supervised|experiment`: training loads inside commands."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from clmr_embed.choices import Device
from clmr_embed.cli.experiment import experiment_command
from clmr_embed.cli.linear import linear_command
from clmr_embed.cli.options import LogFileOpt, handle_errors, logging_to, options_command, require
from clmr_embed.cli.supervised import supervised_command

train_app = typer.Typer(
    no_args_is_help=True,
    help="Pre-train (SimCLR or CPC), linear evaluation, supervised baseline, experiments.",
)


class Precision(StrEnum):
    """Training precision."""

    fp32 = "fp32"
    bf16 = "bf16"  # autocast, CPU or CUDA
    fp16 = "fp16"  # CUDA with a loss scaler


@dataclass(frozen=True)
class PretrainOptions:
    """The command line of `clmr-embed train pretrain`; unset options keep the config's value."""

    data: Annotated[list[Path], typer.Argument(help="Audio folders/files or a manifest.")]
    output_dir: Annotated[Path, typer.Option(help="Run folder (checkpoints, metrics).")]
    config: Annotated[Path | None, typer.Option(help="TOML config file.")] = None
    method: Annotated[
        str | None, typer.Option(help="Pre-training method: simclr (default) or cpc.")
    ] = None
    epochs: Annotated[int | None, typer.Option(min=1, help="Epochs (or use --max-steps).")] = None
    max_steps: Annotated[int | None, typer.Option(min=1, help="Optimiser steps.")] = None
    batch_size: Annotated[int | None, typer.Option(min=1, help="Clips per batch (per rank).")] = (
        None
    )
    device: Annotated[Device | None, typer.Option(help="Where to train.")] = None
    precision: Annotated[Precision | None, typer.Option(help="Training precision.")] = None
    stop_at_step: Annotated[
        int | None, typer.Option(min=1, help="Stop early at this step, keeping the schedule.")
    ] = None
    cache_dir: Annotated[
        Path | None, typer.Option(help="Audio cache root (where the decoded corpus is).")
    ] = None
    allow_probe_sets: Annotated[
        bool, typer.Option(help="Allow evaluation probe sets (GTZAN, Medley) as training data.")
    ] = False
    resume: Annotated[bool, typer.Option(help="Continue from OUTPUT_DIR/latest.pt.")] = False
    log_file: LogFileOpt = None

    def overrides(self) -> dict[str, Any]:
        """The config keys these options set (the unset ones are left to the config file)."""
        values = {
            "method": self.method,  # checked by the config, the one place that knows the methods
            "epochs": self.epochs,
            "max_steps": self.max_steps,
            "batch_size": self.batch_size,
            "device": self.device and self.device.value,
            "precision": self.precision and self.precision.value,
            "stop_at_step": self.stop_at_step,
            "cache_dir": self.cache_dir and str(self.cache_dir),
            "allow_probe_sets": self.allow_probe_sets or None,
        }
        return {key: value for key, value in values.items() if value is not None}


@train_app.command("pretrain", no_args_is_help=True)
@handle_errors
@options_command(PretrainOptions)
def pretrain_command(options: PretrainOptions) -> None:
    """Pre-train a SampleCNN encoder with SimCLR (NT-Xent) on unlabelled audio."""
    require("train", "train pretrain")
    from clmr_embed.cli.render import err
    from training.pretrain.config import load_pretrain_config
    from training.pretrain.run import run_pretrain

    cfg = load_pretrain_config(options.config, options.overrides())
    with logging_to(options.log_file):
        result = run_pretrain(cfg, list(options.data), options.output_dir, resume=options.resume)
    for skipped in result.skipped:
        err.print(f"  [yellow]skipped[/] {escape(skipped.path)}: {escape(skipped.reason)}")
    err.print(
        f"[green]done:[/] {result.steps} steps, loss {result.first_loss:.3f} -> "
        f"{result.final_loss:.3f}, {result.wall_seconds / 60:.1f} min; "
        f"latest {result.checkpoint}, best {result.best_checkpoint}"
    )


train_app.command("linear", no_args_is_help=True)(linear_command)
train_app.command("supervised", no_args_is_help=True)(supervised_command)
train_app.command("experiment", no_args_is_help=True)(experiment_command)

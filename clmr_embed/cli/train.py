"""`clmr-embed train pretrain|linear`: torch, training and export load inside the commands."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from clmr_embed.cli.linear import linear_command
from clmr_embed.cli.options import handle_errors, require

train_app = typer.Typer(
    no_args_is_help=True, help="Pre-train CLMR (SimCLR) and run linear evaluation."
)


class Device(StrEnum):
    """Where pre-training runs."""

    auto = "auto"  # CUDA when torch sees it, else the CPU
    cpu = "cpu"
    cuda = "cuda"


class Precision(StrEnum):
    """The forward pass's precision (the loss is always fp32)."""

    fp32 = "fp32"
    bf16 = "bf16"  # autocast, CPU or CUDA
    fp16 = "fp16"  # autocast + GradScaler, CUDA only


@train_app.command("pretrain", no_args_is_help=True)
@handle_errors
def pretrain_command(
    data: Annotated[list[Path], typer.Argument(help="Audio folders/files or a manifest.")],
    output_dir: Annotated[Path, typer.Option(help="Run folder (checkpoints, metrics).")],
    config: Annotated[Path | None, typer.Option(help="TOML config file.")] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="Epochs (or use --max-steps).")] = None,
    max_steps: Annotated[int | None, typer.Option(min=1, help="Optimiser steps.")] = None,
    batch_size: Annotated[
        int | None, typer.Option(min=1, help="Clips per batch (per rank).")
    ] = None,
    device: Annotated[Device | None, typer.Option(help="Where to train.")] = None,
    precision: Annotated[Precision | None, typer.Option(help="fp32, bf16 or fp16 (CUDA).")] = None,
    stop_at_step: Annotated[
        int | None, typer.Option(min=1, help="Stop early at this step, keeping the schedule.")
    ] = None,
    allow_probe_sets: Annotated[
        bool, typer.Option(help="Allow evaluation probe sets (GTZAN, Medley) as training data.")
    ] = False,
    resume: Annotated[bool, typer.Option(help="Continue from OUTPUT_DIR/latest.pt.")] = False,
) -> None:
    """Pre-train a SampleCNN encoder with SimCLR (NT-Xent) on unlabelled audio."""
    require("train", "train pretrain")
    from clmr_embed.cli.render import err
    from training.pretrain.config import load_pretrain_config
    from training.pretrain.run import run_pretrain

    overrides: dict[str, Any] = {
        key: value
        for key, value in (
            ("epochs", epochs),
            ("max_steps", max_steps),
            ("batch_size", batch_size),
            ("device", device.value if device else None),
            ("precision", precision.value if precision else None),
            ("stop_at_step", stop_at_step),
            ("allow_probe_sets", allow_probe_sets or None),
        )
        if value is not None
    }
    cfg = load_pretrain_config(config, overrides)
    result = run_pretrain(cfg, list(data), output_dir, resume=resume)
    for skipped in result.skipped:
        err.print(f"  [yellow]skipped[/] {escape(skipped.path)}: {escape(skipped.reason)}")
    err.print(
        f"[green]done:[/] {result.steps} steps, NT-Xent {result.first_loss:.3f} -> "
        f"{result.final_loss:.3f}, {result.wall_seconds / 60:.1f} min; "
        f"latest {result.checkpoint}, best {result.best_checkpoint}"
    )


train_app.command("linear", no_args_is_help=True)(linear_command)

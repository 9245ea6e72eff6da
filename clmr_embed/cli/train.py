"""`clmr-embed train pretrain|linear`: torch, training and export load inside the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from clmr_embed.cli.options import handle_errors, require

train_app = typer.Typer(
    no_args_is_help=True, help="Pre-train CLMR (SimCLR) and run linear evaluation."
)


@train_app.command("pretrain", no_args_is_help=True)
@handle_errors
def pretrain_command(
    data: Annotated[list[Path], typer.Argument(help="Audio folders/files or a manifest.")],
    output_dir: Annotated[Path, typer.Option(help="Run folder (checkpoints, metrics).")],
    config: Annotated[Path | None, typer.Option(help="TOML config file.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs (or use --max-steps).")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Optimiser steps.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Clips per batch (per rank).")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda.")] = None,
    precision: Annotated[str | None, typer.Option(help="fp32, bf16 or fp16 (CUDA).")] = None,
    stop_at_step: Annotated[
        int | None, typer.Option(help="Stop early at this step, keeping the schedule.")
    ] = None,
    allow_probe_sets: Annotated[
        bool, typer.Option(help="Allow evaluation probe sets (GTZAN, Medley) as training data.")
    ] = False,
    resume: Annotated[bool, typer.Option(help="Continue from OUTPUT_DIR/latest.pt.")] = False,
) -> None:
    """Pre-train a SampleCNN encoder with SimCLR (NT-Xent) on unlabelled audio."""
    require("train", "train pretrain")
    from clmr_embed.cli.render import err
    from training.pretrain import load_pretrain_config, run_pretrain

    overrides: dict[str, Any] = {
        key: value
        for key, value in (
            ("epochs", epochs),
            ("max_steps", max_steps),
            ("batch_size", batch_size),
            ("device", device),
            ("precision", precision),
            ("stop_at_step", stop_at_step),
            ("allow_probe_sets", allow_probe_sets or None),
        )
        if value is not None
    }
    cfg = load_pretrain_config(config, overrides)
    result = run_pretrain(cfg, list(data), output_dir, resume=resume)
    for skipped in result.skipped:
        err.print(f"  [yellow]skipped[/] {skipped}", markup=True)
    err.print(
        f"[green]done:[/] {result.steps} steps, NT-Xent {result.first_loss:.3f} -> "
        f"{result.final_loss:.3f}, {result.wall_seconds / 60:.1f} min; "
        f"latest {result.checkpoint}, best {result.best_checkpoint}"
    )


@train_app.command("linear", no_args_is_help=True)
@handle_errors
def linear_command(
    encoder: Annotated[
        str, typer.Option(help="Encoder: checkpoint (.pt/.ckpt), .onnx file, mfcc or random.")
    ],
    labels: Annotated[Path, typer.Option(help="Manifest CSV/TSV, class folders, or MTAT folder.")],
    output_dir: Annotated[Path, typer.Option(help="Run folder: report, head, tagger.")],
    mlp: Annotated[
        bool, typer.Option(help="One hidden layer (512, ReLU) instead of linear.")
    ] = False,
    label_fraction: Annotated[
        list[float] | None, typer.Option(help="Share of training labels; repeat for several.")
    ] = None,
    folds: Annotated[int, typer.Option(min=2, help="k of the grouped k-fold.")] = 5,
    repeats: Annotated[int, typer.Option(min=1, help="k-fold repetitions.")] = 1,
    split: Annotated[str, typer.Option(help="auto (given if present), given or kfold.")] = "auto",
    seed: Annotated[int, typer.Option(help="Seed of splits, heads and baselines.")] = 0,
    name: Annotated[str | None, typer.Option(help="Tagger name (default: run folder).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Summary as JSON on stdout.")] = False,
) -> None:
    """Linear evaluation on frozen embeddings: metrics, report, head and a tagger ONNX."""
    require("export", "train linear")
    import json

    from clmr_embed.cli.linear import LinearOptions, run_linear
    from clmr_embed.cli.render import err, out

    fractions = tuple(label_fraction or (1.0,))
    options = LinearOptions(
        encoder, labels, output_dir, mlp, fractions, folds, split, repeats, seed, name
    )
    summary = run_linear(options)
    if as_json:
        typer.echo(json.dumps(summary))
        return
    for result in summary["results"]:
        shown = ", ".join(
            f"{k} {v['mean']:.3f}±{v['std']:.3f}"
            for k, v in result.items()
            if isinstance(v, dict) and k not in ("labels_scored", "labels_skipped", "clips_skipped")
        )
        out.print(f"label fraction {result['label_fraction']:g}: {shown}")
    err.print(f"[green]done:[/] report and tagger in {output_dir}")

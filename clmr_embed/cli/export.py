"""`clmr-embed export`: an encoder (and tagger head) to ONNX + TorchScript; export loads lazily."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from clmr_embed.cli.options import handle_errors, options_command, require


class ExportPrecision(StrEnum):
    """The files `export` writes: fp32 only, or fp32 plus each one's int8 sibling."""

    fp32 = "fp32"
    int8 = "int8"  # static QDQ int8, activations calibrated on --calibration (export.quantize)


@dataclass(frozen=True)
class ExportOptions:
    """The command line of `clmr-embed export`; each field's help is its option's."""

    checkpoint: Annotated[
        Path, typer.Option(help="clmr-embed or official CLMR checkpoint (.pt/.ckpt).")
    ]
    output_dir: Annotated[Path, typer.Option(help="Folder for the ONNX/TorchScript files.")]
    head: Annotated[
        Path | None, typer.Option(help="Tagger head checkpoint (e.g. finetuner_checkpoint_200.pt).")
    ] = None
    name: Annotated[str | None, typer.Option(help="Model name (default: checkpoint stem).")] = None
    licence: Annotated[
        str | None, typer.Option(help="Licence note stored in the files' metadata.")
    ] = None
    description: Annotated[
        str | None, typer.Option(help="Description stored in the metadata (data, steps, ...).")
    ] = None
    force: Annotated[bool, typer.Option(help="Overwrite existing output files.")] = False
    precision: Annotated[
        ExportPrecision,
        typer.Option(
            help="int8 also writes X.int8.onnx beside each model file (needs --calibration)."
        ),
    ] = ExportPrecision.fp32
    calibration: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            file_okay=False,
            help="Music folder whose windows calibrate int8 activations (not your test data).",
        ),
    ] = None


@handle_errors
@options_command(ExportOptions)
def export_command(options: ExportOptions) -> None:
    """Export an encoder (and tagger head) to ONNX + TorchScript, with metadata and parity."""
    if (options.precision == ExportPrecision.int8) != (options.calibration is not None):
        raise typer.BadParameter(
            "--precision int8 and --calibration DIR go together (int8 activations are "
            "calibrated on the folder's music)",
            param_hint="--calibration",
        )
    require("export", "export")
    from clmr_embed.cli.render import err, out
    from export.api import ExportConfig, run_export

    config = ExportConfig(
        checkpoint=options.checkpoint,
        head=options.head,
        output_dir=options.output_dir,
        force=options.force,
        name=options.name,
        licence=options.licence,
        description=options.description,
    )
    report = run_export(config)
    for row in report.parity:
        err.print(
            f"parity {row.artifact:<28} {row.backend:<12} batch {row.batch:>2}: "
            f"max |diff| {row.max_abs_diff:.2e}"
        )
    for path in report.files:
        out.print(str(path), soft_wrap=True)  # one path a line, never wrapped: pipeable
    err.print(f"[green]exported[/] {len(report.files)} files in {report.seconds:.1f} s")
    if options.calibration is not None:
        from export.quantize import quantize_exports

        for q in quantize_exports(report.files, options.calibration):
            out.print(str(q.path), soft_wrap=True)
            blocks = ", ".join(map(str, q.float_blocks)) or "none"
            err.print(
                f"[green]int8[/] {q.path.name}: float blocks {blocks}, calibrated on "
                f"{q.calibration_windows} windows of {len(q.files)} files"
            )

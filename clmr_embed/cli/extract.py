"""`clmr-embed extract`: embed every audio file under the inputs into one resumable store."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from clmr_embed.choices import Decoder, Device, Precision
from clmr_embed.cli.options import (
    DeviceOpt,
    EngineOpt,
    HopOpt,
    JsonOpt,
    LogFileOpt,
    ModelOpt,
    PrecisionOpt,
    ThreadsOpt,
    WorkersOpt,
    check_engine_choice,
    handle_errors,
    inputs_and_output,
    logging_to,
    options_command,
    resolve_or_fetch,
    sigterm_as_interrupt,
)

if TYPE_CHECKING:
    from clmr_embed.extract import ExtractSummary


@dataclass(frozen=True)
class ExtractOptions:
    """The command line of `clmr-embed extract`; each field's help is its option's."""

    paths: Annotated[
        list[Path], typer.Argument(help="Audio files/folders, then the output store (OUT.h5).")
    ]
    model: ModelOpt = None
    hop_seconds: HopOpt = None
    batch_size: Annotated[int, typer.Option(min=1, help="Windows per model call.")] = 16
    workers: WorkersOpt = None
    device: DeviceOpt = Device.auto
    threads: ThreadsOpt = 0
    precision: PrecisionOpt = Precision.fp32
    engine: EngineOpt = None
    force: Annotated[
        bool, typer.Option(help="Start OUT afresh if made by another model or precision.")
    ] = False
    prune: Annotated[bool, typer.Option(help="Remove stored tracks whose files are gone.")] = False
    include: Annotated[list[str] | None, typer.Option(help="Only files matching glob.")] = None
    exclude: Annotated[list[str] | None, typer.Option(help="Skip files matching glob.")] = None
    decoder: Annotated[
        Decoder, typer.Option(help="av (PyAV/FFmpeg, every format) or soundfile (libsndfile).")
    ] = Decoder.av
    backend: Annotated[
        Decoder | None, typer.Option(hidden=True, help="The old name of --decoder.")
    ] = None
    commit_every: Annotated[
        int, typer.Option(min=1, help="Merge finished tracks into OUT every N tracks.")
    ] = 200
    ray: Annotated[
        str | None,
        typer.Option(
            metavar="ADDRESS",
            help="Run on Ray: 'local' starts one here, else a cluster address ('auto', "
            "'ray://host:10001'); decoding runs in Ray tasks (--workers is not used).",
        ),
    ] = None
    ray_actors: Annotated[
        int, typer.Option(min=0, help="With --ray: embedding actors; 0: one per 2 CPUs.")
    ] = 0
    log_file: LogFileOpt = None
    as_json: JsonOpt = False


def _decoder(options: ExtractOptions) -> Decoder:
    if options.backend is None:
        return options.decoder
    if options.decoder is not Decoder.av and options.decoder is not options.backend:
        raise typer.BadParameter("--backend is the old name of --decoder; give only one")
    return options.backend


@handle_errors
@options_command(ExtractOptions)
def extract_command(options: ExtractOptions) -> None:
    """Embed every audio file under INPUT... into one resumable HDF5 store OUT.h5."""
    inputs, output = inputs_and_output(options.paths, "INPUT")
    decoder = _decoder(options)
    check_engine_choice(options.precision, options.engine, options.device)
    from clmr_embed.cli.render import extract_summary
    from clmr_embed.errors import ConfigError
    from clmr_embed.names import shown

    try:
        summary = _run(options, inputs, output, decoder)
    except ConfigError as exc:  # an option value the model or this machine cannot take
        raise typer.BadParameter(shown(str(exc))) from None
    extract_summary(summary)
    if options.as_json:
        typer.echo(json.dumps(summary.to_dict()))
    raise typer.Exit(summary.exit_code)


def _run(
    options: ExtractOptions,
    inputs: tuple[Path, ...],
    output: Path,
    decoder: Decoder,
) -> ExtractSummary:
    from clmr_embed.cli.render import ExtractProgress
    from clmr_embed.extract import ExtractConfig, run_extract

    config = ExtractConfig(
        inputs=inputs,
        output=output,
        model=resolve_or_fetch(options.model),
        hop_seconds=options.hop_seconds,
        batch_size=options.batch_size,
        workers=options.workers,
        device=options.device,
        threads=options.threads,
        precision=options.precision,
        engine=options.engine,
        force=options.force,
        prune=options.prune,
        include=tuple(options.include or ()),
        exclude=tuple(options.exclude or ()),
        decoder=decoder,
        commit_every=options.commit_every,
    )
    with logging_to(options.log_file), sigterm_as_interrupt(), ExtractProgress() as progress:
        if options.ray is None:
            return run_extract(config, progress=progress)
        from clmr_embed.extract.cluster import ClusterConfig, run_extract_ray

        cluster = ClusterConfig(options.ray, options.ray_actors)
        return run_extract_ray(config, cluster, progress=progress)

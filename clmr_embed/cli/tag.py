"""`clmr-embed tag`: render `clmr_embed.tagging.tag_files` as JSON lines or rich tables."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from clmr_embed.choices import Device, Precision
from clmr_embed.cli.options import (
    DeviceOpt,
    EngineOpt,
    HopOpt,
    JsonOpt,
    ModelOpt,
    PrecisionOpt,
    ThreadsOpt,
    check_engine_choice,
    handle_errors,
    options_command,
    resolve_or_fetch,
    sigterm_as_interrupt,
)

if TYPE_CHECKING:
    from clmr_embed.embed import Embedder, TagResult
    from clmr_embed.tagging import TaggedFile


@dataclass(frozen=True)
class TagOptions:
    """The command line of `clmr-embed tag`; each field's help is its option's."""

    audio: Annotated[list[Path], typer.Argument(help="Audio files or folders.")]
    model: ModelOpt = None
    top_k: Annotated[int, typer.Option(min=1, help="How many tags to show.")] = 10
    segments: Annotated[bool, typer.Option(help="Add per-window scores (a taggram).")] = False
    hop_seconds: HopOpt = None
    device: DeviceOpt = Device.auto
    threads: ThreadsOpt = 0
    precision: PrecisionOpt = Precision.fp32
    engine: EngineOpt = None
    as_json: JsonOpt = False


def _round6(value: Any) -> float:
    return round(float(value), 6)


def tag_record(path: str, embedder: Embedder, result: TagResult) -> dict[str, Any]:
    """The JSON object printed for one file (segments when the result kept its windows)."""
    info = embedder.info
    record: dict[str, Any] = {
        "path": path,
        "model": info.name,
        "model_sha256": embedder.model.sha256,
        "engine": embedder.model.engine,
        "precision": embedder.model.precision,  # what ran (a bf16 request may run fp32)
        "trained": info.trained,
        "task": info.task,
        "n_windows": result.n_windows,
        "padded": result.padded,
        "flags": list(result.flags),
        "tags": [{"label": t.label, "score": round(t.score, 6)} for t in result.tags],
    }
    if result.window_probs is not None and result.starts_s is not None:
        record["segments"] = [
            {
                "start_s": round(float(start), 3),
                "end_s": round(float(start) + info.window_seconds, 3),
                "scores": dict(zip(info.labels, map(_round6, row), strict=True)),
            }
            for start, row in zip(result.starts_s, result.window_probs, strict=True)
        ]
    return record


def _warn_flags(path: str, result: TagResult) -> None:
    from clmr_embed.cli.render import warn

    if result.padded:
        warn(f"{path}: shorter than one window; zero-padded")
    if result.silent:
        warn(f"{path}: digital silence (every sample is zero); its tags mean nothing")
    if "truncated" in result.flags:
        warn(f"{path}: decoded clearly shorter than its header says; the file was cut short")
    if "gaps" in result.flags:
        warn(f"{path}: damaged packets were skipped; the audio has gaps")


def _failed(path: str, reason: str, as_json: bool) -> None:
    """A file that could not be tagged: a red line, and with --json an object with `error`."""
    from clmr_embed.cli.render import error

    error(reason)
    if as_json:
        print(json.dumps({"path": path, "error": reason}), flush=True)


def _show(embedder: Embedder, tagged: TaggedFile, as_json: bool) -> None:
    """Render one outcome of `tag_files`: a warning, a failure, or the file's tags."""
    from clmr_embed.cli.render import tag_table, warn

    if tagged.skipped:
        warn(tagged.skipped)
    elif tagged.result is None:
        _failed(tagged.path, tagged.error, as_json)
    else:
        _warn_flags(tagged.path, tagged.result)
        if as_json:
            print(json.dumps(tag_record(tagged.path, embedder, tagged.result)), flush=True)
        else:
            tags = [(t.label, t.score) for t in tagged.result.tags]
            tag_table(tagged.path, embedder.info.name, embedder.info.trained, tags)


def run_tag(options: TagOptions) -> int:
    """Tag every audio file under the inputs; returns the exit code (1 if any file failed)."""
    from clmr_embed.cli.render import error, warn
    from clmr_embed.embed import Embedder
    from clmr_embed.tagging import tag_files

    model = resolve_or_fetch(options.model)
    embedder = Embedder(
        model,
        device=options.device,
        threads=options.threads,
        precision=options.precision,
        engine=options.engine,
    )
    if not embedder.info.trained:
        name = embedder.info.name
        warn(f"model {name!r} has an UNTRAINED (random-init) encoder: a baseline only")
    total = failed = 0
    outcomes = tag_files(
        embedder, options.audio, options.top_k, options.hop_seconds, segments=options.segments
    )
    for tagged in outcomes:
        _show(embedder, tagged, options.as_json)
        total += not tagged.skipped
        failed += tagged.failed
    if failed:
        error(f"{failed} of {total} files could not be tagged")
    return 1 if failed else 0


@handle_errors
@options_command(TagOptions)
def tag_command(options: TagOptions) -> None:
    """Top tags with scores for each song (onnxruntime fp32 unless --precision says)."""
    check_engine_choice(options.precision, options.engine, options.device)
    with sigterm_as_interrupt():
        code = run_tag(options)
    raise typer.Exit(code)

"""`clmr-embed tag`: tag files and folders as JSON lines or rich tables; bad files never stop it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from clmr_embed.cli.options import (
    Device,
    DeviceOpt,
    HopOpt,
    JsonOpt,
    ModelOpt,
    ThreadsOpt,
    handle_errors,
    options_command,
    resolve_or_fetch,
)

if TYPE_CHECKING:
    from clmr_embed.embed import Embedder, TagResult


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


def _warn_flags(path: Path, result: TagResult) -> None:
    from clmr_embed.cli.render import warn

    if result.padded:
        warn(f"{path}: shorter than one window; zero-padded")
    if result.silent:
        warn(f"{path}: digital silence (every sample is zero); its tags mean nothing")


def run_tag(options: TagOptions) -> int:
    """Tag every audio file under the inputs; returns the exit code (1 if any file failed)."""
    from clmr_embed.cli.render import error, tag_table, warn
    from clmr_embed.embed import Embedder
    from clmr_embed.errors import AudioDecodeError
    from clmr_embed.scan import find_audio_files

    model = resolve_or_fetch(options.model)
    embedder = Embedder(model, device=options.device.value, threads=options.threads)
    if not embedder.info.trained:
        name = embedder.info.name
        warn(f"model {name!r} has an UNTRAINED (random-init) encoder: a baseline only")
    files = find_audio_files(options.audio)
    failed = 0
    for file in files:
        try:
            result = embedder.tag_file(
                file.path, options.top_k, options.hop_seconds, segments=options.segments
            )
        except AudioDecodeError as exc:
            error(str(exc))
            failed += 1
            continue
        _warn_flags(file.path, result)
        if options.as_json:
            print(json.dumps(tag_record(str(file.path), embedder, result)), flush=True)
        else:
            tags = [(t.label, t.score) for t in result.tags]
            tag_table(str(file.path), embedder.info.name, embedder.info.trained, tags)
    if failed:
        error(f"{failed} of {len(files)} files could not be tagged")
    return 1 if failed else 0


@handle_errors
@options_command(TagOptions)
def tag_command(options: TagOptions) -> None:
    """Top tags with scores for each song, through onnxruntime."""
    raise typer.Exit(run_tag(options))

"""`clmr-embed tag`: tag files and folders as JSON lines or rich tables; bad files never stop it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clmr_embed.embed import Embedder, TagResult
from clmr_embed.errors import AudioDecodeError
from clmr_embed.scan import find_audio_files


@dataclass(frozen=True)
class TagOptions:
    """How `tag` runs and prints."""

    top_k: int = 10  # tags per song
    segments: bool = False  # add per-window scores with start times (a taggram)
    hop_seconds: float | None = None  # hop between windows; None: back-to-back windows
    device: str = "auto"  # onnxruntime device
    threads: int = 0  # onnxruntime threads
    as_json: bool = False  # JSON lines on stdout instead of tables


def _round6(value: Any) -> float:
    return round(float(value), 6)


def tag_record(path: str, embedder: Embedder, result: TagResult, segments: bool) -> dict[str, Any]:
    """The JSON object printed for one file."""
    info = embedder.info
    record: dict[str, Any] = {
        "path": path,
        "model": info.name,
        "model_sha256": embedder.model.sha256,
        "trained": info.trained,
        "task": info.task,
        "n_windows": len(result.starts_s),
        "padded": result.padded,
        "tags": [{"label": t.label, "score": round(t.score, 6)} for t in result.top],
    }
    if segments:
        record["segments"] = [
            {
                "start_s": round(float(start), 3),
                "end_s": round(float(start) + info.window_seconds, 3),
                "scores": dict(zip(info.labels, map(_round6, row), strict=True)),
            }
            for start, row in zip(result.starts_s, result.window_probs, strict=True)
        ]
    return record


def run_tag(inputs: list[Path], model: str, options: TagOptions) -> int:
    """Tag every audio file under `inputs`; returns the exit code (1 if any file failed)."""
    from clmr_embed.cli.render import error, tag_table, warn

    embedder = Embedder(model, device=options.device, threads=options.threads)
    if not embedder.info.trained:
        name = embedder.info.name
        warn(f"model {name!r} has an UNTRAINED (random-init) encoder: a baseline only")
    files = find_audio_files(inputs)
    failed = 0
    for file in files:
        try:
            result = embedder.tag_file(file.path, options.top_k, options.hop_seconds)
        except AudioDecodeError as exc:
            error(str(exc))
            failed += 1
            continue
        if result.padded:
            warn(f"{file.path}: shorter than one window; zero-padded")
        record = tag_record(str(file.path), embedder, result, options.segments)
        if options.as_json:
            print(json.dumps(record), flush=True)
        else:
            tags = [(t["label"], t["score"]) for t in record["tags"]]
            tag_table(str(file.path), embedder.info.name, embedder.info.trained, tags)
    if failed:
        error(f"{failed} of {len(files)} files could not be tagged")
    return 1 if failed else 0

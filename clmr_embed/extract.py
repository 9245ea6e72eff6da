"""`clmr-embed extract`: embed a whole audio library into one resumable HDF5 store."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from clmr_embed import __version__
from clmr_embed.audio import preprocessing_info
from clmr_embed.decoder import DecodeJob
from clmr_embed.embed import hop_samples
from clmr_embed.errors import ModelArtifactError
from clmr_embed.model import OnnxModel, SessionConfig
from clmr_embed.pipeline import Pipeline
from clmr_embed.plan import Plan, make_plan
from clmr_embed.registry import resolve_model
from clmr_embed.scan import find_audio_files
from clmr_embed.store import StoreHeader, StoreWriter, open_writer


@dataclass(frozen=True)
class ExtractConfig:
    """Options of one extract run."""

    inputs: tuple[Path, ...]  # audio files and/or folders (scanned recursively)
    output: Path  # the HDF5 store
    model: str | None = None  # registered name or ONNX path; None: the default model
    hop_seconds: float | None = None  # None: the model's window (back-to-back chunks, as CLMR)
    batch_size: int = 16  # windows per onnxruntime call; windows of many files are packed
    workers: int = 1  # decode processes; 0 decodes in the main process
    device: str = "auto"  # "auto", "cpu" or "cuda"
    threads: int = 0  # onnxruntime intra-op threads; 0: onnxruntime's choice
    force: bool = False  # start a new store even if OUT was made with another model/hop
    prune: bool = False  # remove tracks whose files disappeared
    include: tuple[str, ...] = ()  # globs a file must match (relative path or name)
    exclude: tuple[str, ...] = ()  # globs that drop a file
    backend: str = "av"  # decoder: "av" or "soundfile"
    commit_every: int = 200  # merge the journal into the store after this many tracks (or a timer)
    trace: Path | None = None  # append "start ID"/"done ID" lines (tests count model work)


@dataclass
class ExtractSummary:
    """What a run did; `exit_code` is 1 when any file failed."""

    store: str
    model_name: str
    model_sha256: str
    model_trained: bool
    files: int = 0
    embedded: int = 0
    unchanged: int = 0
    aliased: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    flagged: list[tuple[str, list[str]]] = field(default_factory=list)  # (path, flags)
    missing: list[str] = field(default_factory=list)  # relpaths no longer found
    pruned: int = 0
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def to_dict(self) -> dict[str, Any]:
        speed = self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0
        return {
            "store": self.store,
            "model": {
                "name": self.model_name,
                "sha256": self.model_sha256,
                "trained": self.model_trained,
            },
            "files": self.files,
            "embedded": self.embedded,
            "unchanged": self.unchanged,
            "aliased": self.aliased,
            "failed": [{"path": p, "reason": r} for p, r in self.failed],
            "flagged": [{"path": p, "flags": f} for p, f in self.flagged],
            "missing": self.missing,
            "pruned": self.pruned,
            "audio_seconds": round(self.audio_seconds, 3),
            "wall_seconds": round(self.wall_seconds, 3),
            "x_realtime": round(speed, 2),
            "exit_code": self.exit_code,
        }


class Progress(Protocol):
    """Where a run reports progress (the CLI draws a rich bar; None is silent)."""

    def start(self, total_files: int) -> None: ...
    def advance(self, relpath: str, audio_seconds: float) -> None: ...


def _header(model: OnnxModel, hop: int, backend: str) -> StoreHeader:
    info = model.info
    return StoreHeader(
        model_name=info.name,
        model_sha256=model.sha256,
        model_trained=info.trained,
        sample_rate=info.sample_rate,
        window_samples=info.window_samples,
        hop_samples=hop,
        embedding_dim=info.embedding_dim,
        preprocessing={**preprocessing_info(backend), "clmr_embed_version": __version__},
    )


def _record_aliases(plan: Plan, store: StoreWriter, summary: ExtractSummary) -> None:
    failed = {path for path, _ in summary.failed}
    targets = {t.track_id: t for t in plan.todo}
    for track, target in plan.aliases + plan.pending_aliases:
        source = targets.get(target)
        if source is not None and source.file.relpath in failed:
            reason = f"{track.file.path}: identical to {source.file.relpath}, which failed"
            store.add_error(track.file.relpath, reason)
            summary.failed.append((track.file.relpath, reason))
            continue
        store.add_alias(track.track_id, track.file.relpath, track.content, target)
        store.clear_error(track.file.relpath)
        summary.aliased += 1


def run_extract(config: ExtractConfig, progress: Progress | None = None) -> ExtractSummary:
    """Embed every audio file under `config.inputs` into the store `config.output`.

    Bad files are recorded (store errors, summary.failed) and skipped; finished tracks are
    journaled at once, so an interrupted run resumes without recomputing them.
    """
    began = time.perf_counter()
    model = OnnxModel(resolve_model(config.model), SessionConfig(config.device, config.threads))
    if model.info.kind == "head":
        raise ModelArtifactError(
            f"{model.path} is a head-only model; extract needs an encoder or tagger ONNX file"
        )
    hop = hop_samples(model.info, config.hop_seconds)
    files = find_audio_files(list(config.inputs), config.include, config.exclude)
    summary = ExtractSummary(
        store=str(config.output),
        model_name=model.info.name,
        model_sha256=model.sha256,
        model_trained=model.info.trained,
        files=len(files),
    )
    with open_writer(config.output, _header(model, hop, config.backend), force=config.force) as st:
        stored = {tid: t for tid, t in st.tracks.items()}
        plan = make_plan(files, st, set(stored))
        summary.unchanged = len(plan.unchanged)
        summary.missing = [stored[tid].relpath for tid in plan.missing]
        scanned = {file.relpath for file in files}
        for relpath in set(st.errors) - scanned:  # errors describe the last run's files only
            st.clear_error(relpath)
        for file, reason in plan.unreadable:
            st.add_error(file.relpath, reason)
            summary.failed.append((file.relpath, reason))
        if progress:
            progress.start(len(plan.todo))
        info = model.info
        jobs = [
            DecodeJob(
                i,
                str(t.file.path),
                info.sample_rate,
                info.window_samples,
                hop,
                backend=config.backend,
            )
            for i, t in enumerate(plan.todo)
        ]
        Pipeline(model, st, config, summary, progress).run(plan.todo, jobs)
        _record_aliases(plan, st, summary)
        if config.prune:
            for tid in plan.missing:
                st.remove(tid)
            summary.pruned = len(plan.missing)
    summary.wall_seconds = time.perf_counter() - began
    return summary

"""`run_extract`: embed a whole audio library into one resumable HDF5 store."""

from __future__ import annotations

import time
from pathlib import Path

from clmr_embed import __version__
from clmr_embed.audio import WindowSpec, preprocessing_info
from clmr_embed.errors import ModelArtifactError, StoreError
from clmr_embed.extract.batches import BatchRunner, Outcome
from clmr_embed.extract.config import (
    ExtractConfig,
    Progress,
    available_memory,
    check_batch_memory,
)
from clmr_embed.extract.messages import DecodeJob
from clmr_embed.extract.plan import Plan, make_plan
from clmr_embed.extract.summary import (
    ExtractSummary,
    FailedFile,
    FlaggedFile,
    Interrupted,
    SkippedPath,
)
from clmr_embed.extract.workers import decode_messages
from clmr_embed.model import OnnxModel, SessionConfig
from clmr_embed.names import escaped, shown
from clmr_embed.registry import resolve_model
from clmr_embed.scan import Scan, scan_inputs
from clmr_embed.store import StoreHeader, StoreWriter, open_writer


def _header(model: OnnxModel, spec: WindowSpec, decoder: str) -> StoreHeader:
    info = model.info
    return StoreHeader(
        model_name=info.name,
        model_sha256=model.sha256,
        model_trained=info.trained,
        sample_rate=info.sample_rate,
        window_samples=info.window_samples,
        hop_samples=spec.hop_samples,
        embedding_dim=info.embedding_dim,
        preprocessing={**preprocessing_info(decoder), "clmr_embed_version": __version__},
    )


def _open_model(config: ExtractConfig) -> OnnxModel:
    model = OnnxModel(resolve_model(config.model), SessionConfig(config.device, config.threads))
    if model.info.kind == "head":
        raise ModelArtifactError(
            f"{model.path} is a head-only model; extract needs an encoder or tagger ONNX file"
        )
    return model


def _record_aliases(plan: Plan, store: StoreWriter, failed: list[FailedFile]) -> int:
    """Store each duplicate as an alias of its embedded twin; a failed twin fails it too."""
    failed_paths = {f.path for f in failed}
    targets = {t.track_id: t for t in plan.todo}
    aliased = 0
    for track, target in plan.aliases + plan.pending_aliases:
        source = targets.get(target)
        if source is not None and source.file.relpath in failed_paths:
            reason = f"{track.file.path}: identical to {source.file.relpath}, which failed"
            store.add_error(track.file.relpath, reason)
            failed.append(FailedFile(track.file.relpath, reason))
            continue
        store.add_alias(track.track_id, track.file.relpath, track.content, target)
        store.clear_error(track.file.relpath)
        aliased += 1
    return aliased


def _forget_old_errors(store: StoreWriter, scanned: set[str]) -> None:
    """Errors describe the last run's files only: drop those of files not scanned now."""
    for relpath in set(store.errors) - scanned:
        store.clear_error(relpath)


def _check_output(output: Path) -> None:
    """The store's folder must exist (a typo there would otherwise surface deep in the store)."""
    folder = output.absolute().parent
    if not folder.is_dir():
        raise StoreError(
            f"the folder {shown(folder)} of the store {shown(output.name)} does not exist; "
            "create it first"
        )


def _record_unreadable(store: StoreWriter, scan: Scan, plan: Plan) -> list[FailedFile]:
    """Record what cannot be embedded before any decoding: lost scan paths, unreadable files."""
    unreadable = [FailedFile(s.relpath, s.reason) for s in scan.skipped if s.lost]
    unreadable += [FailedFile(key, reason) for key, reason in plan.unreadable]
    _forget_old_errors(store, {file.relpath for file in scan.files} | {f.path for f in unreadable})
    for failure in unreadable:
        store.add_error(failure.path, failure.reason)
    return unreadable


def run_extract(config: ExtractConfig, progress: Progress | None = None) -> ExtractSummary:
    """Embed every audio file under `config.inputs` into the store `config.output`.

    Bad files are recorded (store errors, summary.failed) and skipped; finished tracks are
    journaled at once, so an interrupted run resumes without recomputing them.

    Raises:
        ConfigError: a batch that would not fit in memory (before any file is read).
        Interrupted: Ctrl-C (or a SIGTERM the caller turned into KeyboardInterrupt); it
            carries how many tracks this run embedded and kept.
    """
    began = time.perf_counter()
    _check_output(config.output)
    model = _open_model(config)
    info = model.info
    check_batch_memory(config.batch_size, info.window_samples, available_memory())
    spec = WindowSpec.from_hop_seconds(info.sample_rate, info.window_samples, config.hop_seconds)
    scan = scan_inputs(list(config.inputs), config.include, config.exclude)
    header = _header(model, spec, config.decoder)
    outcome = Outcome()
    try:
        with open_writer(config.output, header, force=config.force) as store:
            stored = store.tracks
            plan = make_plan(scan.files, store, set(stored))
            unreadable = _record_unreadable(store, scan, plan)
            if progress:
                progress.start(len(plan.todo))
            jobs = [
                DecodeJob(i, str(t.file.path), spec, config.decoder)
                for i, t in enumerate(plan.todo)
            ]
            runner = BatchRunner(model, store, config, progress, outcome)
            runner.run(plan.todo, decode_messages(jobs, config.workers))
            failed = unreadable + outcome.failed
            aliased = _record_aliases(plan, store, failed)
            if config.prune:
                for track_id in plan.missing:
                    store.remove(track_id)
    except KeyboardInterrupt:
        raise Interrupted(len(outcome.embedded)) from None
    return ExtractSummary(  # the one place a summary is built
        store=escaped(config.output),
        model_name=info.name,
        model_sha256=model.sha256,
        model_trained=info.trained,
        files=len(scan.files),
        embedded=len(outcome.embedded),
        unchanged=len(plan.unchanged),
        aliased=aliased,
        failed=tuple(failed),
        flagged=tuple(FlaggedFile(t.relpath, t.flags) for t in outcome.embedded if t.flags),
        skipped=tuple(SkippedPath(s.relpath, s.reason) for s in scan.skipped if not s.lost),
        missing=tuple(stored[tid].relpath for tid in plan.missing),
        pruned=len(plan.missing) if config.prune else 0,
        duration_s=sum(t.duration_s for t in outcome.embedded),
        wall_s=time.perf_counter() - began,
    )

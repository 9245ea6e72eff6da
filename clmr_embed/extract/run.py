"""`run_extract`: embed a whole audio library into one resumable HDF5 store."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from clmr_embed import __version__
from clmr_embed.audio import WindowSpec, preprocessing_info
from clmr_embed.engines import Engine, open_engine
from clmr_embed.errors import StoreError
from clmr_embed.extract.batches import BatchRunner, Outcome
from clmr_embed.extract.config import (
    ExtractConfig,
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
from clmr_embed.extract.workers import (
    DecodeFn,
    DecodePool,
    decode_messages,
    decode_track,
    start_pool,
)
from clmr_embed.names import escaped, shown
from clmr_embed.progress import Progress
from clmr_embed.resolution import resolve_model_file
from clmr_embed.scan import Scan, scan_inputs
from clmr_embed.store import StoredTrack, StoreHeader, StoreWriter, open_writer


def _header(model: Engine, spec: WindowSpec, decoder: str) -> StoreHeader:
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
        engine=model.engine,
        precision=model.precision,  # what ran: a bf16 request on a CPU without bf16 runs fp32
    )


def open_model(config: ExtractConfig) -> Engine:
    """The run's model, resolved by name or path and opened in the chosen engine (a head-only
    file is refused there)."""
    return open_engine(resolve_model_file(config.model), config.engine_config)


def _record_aliases(
    plan: Plan, store: StoreWriter, failed_paths: set[str]
) -> tuple[list[str], list[FailedFile]]:
    """Store each duplicate as an alias of its embedded twin; a failed twin fails it too.

    Returns (the ids aliased, the duplicates failed).
    """
    targets = {t.track_id: t for t in plan.todo}
    aliased, failed = [], []
    for track, target in plan.aliases + plan.pending_aliases:
        source = targets.get(target)
        if source is not None and source.file.relpath in failed_paths:
            reason = f"{shown(track.file.path)}: identical to {source.file.relpath}, which failed"
            store.add_error(track.file.relpath, reason)
            failed.append(FailedFile(track.file.relpath, reason))
            continue
        store.add_alias(track.track_id, track.file.relpath, track.content, target)
        store.clear_error(track.file.relpath)
        aliased.append(track.track_id)
    return aliased, failed


def _forget_old_errors(store: StoreWriter, scanned: set[str]) -> None:
    """Errors describe the last run's files only: drop those of files not scanned now."""
    for relpath in set(store.errors) - scanned:
        store.clear_error(relpath)


def check_output(output: Path) -> None:
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


def _find_damage(store: StoreWriter) -> dict[str, str]:
    """Stored tracks whose arrays fail their checksum (id -> reason), with a warning."""
    damaged = store.damaged()
    if damaged:
        tracks = store.tracks
        some = sorted(damaged.items())[:3]
        named = ", ".join(f"{shown(tracks[tid].relpath)} ({why})" for tid, why in some)
        warnings.warn(
            f"store {shown(store.path)}: {len(damaged)} damaged tracks, e.g. {named}; "
            "re-embedding those whose files are found",
            stacklevel=3,
        )
    return damaged


@dataclass
class ExtractRun:
    """What one run did so far, embedded here or on Ray (extract/cluster.py): the summary is
    built from it, even when writing fails midway."""

    config: ExtractConfig
    model: Engine
    scan: Scan
    pool: DecodePool | None = None  # decode workers started before the model loaded
    plan: Plan = field(default_factory=Plan)
    outcome: Outcome = field(default_factory=Outcome)  # filled as tracks finish
    unreadable: list[FailedFile] = field(default_factory=list)  # files that could not be read
    aliased: list[str] = field(default_factory=list)  # ids stored as aliases this run
    alias_failed: list[FailedFile] = field(default_factory=list)  # duplicates of failed files
    stored: dict[str, StoredTrack] = field(default_factory=dict)  # before the run
    damaged: dict[str, str] = field(default_factory=dict)  # id -> why, found before planning
    store_error: str = ""
    decode: DecodeFn = decode_track  # one job to its messages (in a worker process)

    def embed(self, store: StoreWriter, spec: WindowSpec, progress: Progress | None) -> None:
        """Plan, embed the new and changed files here (decode workers), then finish."""
        jobs = self.prepare(store, spec, progress)
        runner = BatchRunner(self.model, store, self.config, progress, self.outcome)
        messages = decode_messages(jobs, self.config.decode_workers, self.decode, self.pool)
        runner.run(self.plan.todo, messages)
        self.finish(store)

    def prepare(
        self, store: StoreWriter, spec: WindowSpec, progress: Progress | None
    ) -> list[DecodeJob]:
        """Plan the run against the store, record unreadable files; the decode jobs of the
        files to embed (job i is plan.todo[i])."""
        self.stored = store.tracks
        self.damaged = _find_damage(store)
        files = self.scan.files
        self.plan = plan = make_plan(files, store, set(self.stored), damaged=self.damaged)
        self.unreadable = _record_unreadable(store, self.scan, plan)
        if progress:
            progress.start(len(plan.todo))
        decoder = self.config.decoder
        return [DecodeJob(i, str(t.file.path), spec, decoder) for i, t in enumerate(plan.todo)]

    def finish(self, store: StoreWriter) -> None:
        """Once the planned files are embedded: their duplicates as aliases, then --prune."""
        failed_paths = {f.path for f in self.unreadable + self.outcome.failed}
        self.aliased, self.alias_failed = _record_aliases(self.plan, store, failed_paths)
        if self.config.prune:
            for track_id in self.plan.missing:
                store.remove(track_id)

    def summary(self, wall_s: float) -> ExtractSummary:
        """The one place a summary is built."""
        info, plan, outcome = self.model.info, self.plan, self.outcome
        done = {t.relpath for t in outcome.embedded}
        embedded_ids = {t.track_id for t in plan.todo if t.file.relpath in done}
        pruned = len(plan.missing) if self.config.prune and not self.store_error else 0
        skipped = self.scan.skipped
        return ExtractSummary(
            store=escaped(self.config.output),
            model_name=info.name,
            model_sha256=self.model.sha256,
            model_trained=info.trained,
            files=len(self.scan.files),
            embedded=len(outcome.embedded),
            unchanged=len(plan.unchanged),
            aliased=len(self.aliased),
            failed=tuple(self.unreadable + outcome.failed + self.alias_failed),
            flagged=tuple(FlaggedFile(t.relpath, t.flags) for t in outcome.embedded if t.flags),
            skipped=tuple(SkippedPath(s.relpath, s.reason) for s in skipped if not s.lost),
            missing=tuple(self.stored[tid].relpath for tid in plan.missing),
            pruned=pruned,
            duration_s=sum(t.duration_s for t in outcome.embedded),
            wall_s=wall_s,
            damaged=tuple(sorted(self.stored[tid].relpath for tid in self.damaged)),
            repaired=len(plan.repairs & (embedded_ids | set(self.aliased))),
            store_error=self.store_error,
            engine=self.model.engine,
            precision=self.model.precision,
            engine_detail=self.model.detail,
            workers=self.pool.size if self.pool else 0,
            workers_auto=self.config.workers is None,
        )


def run_extract(
    config: ExtractConfig, progress: Progress | None = None, decode: DecodeFn = decode_track
) -> ExtractSummary:
    """Embed every audio file under `config.inputs` into the store `config.output`.

    `decode` turns one file's job into window messages; it runs in the decode workers, so a
    replacement (a test's crashing decoder) must be a module-level function.

    Bad files are recorded (store errors, summary.failed) and skipped; finished tracks are
    journaled at once, so an interrupted run resumes without recomputing them. Damaged
    tracks of the store are embedded again from their files (summary.repaired). When writing
    the store fails midway (a full disk), the summary says so (store_error, exit code 1).

    Raises:
        StoreError: the store cannot be opened (locked, read-only, another model, not ours).
        ConfigError: a batch that would not fit in memory (before any file is read).
        Interrupted: Ctrl-C (or a SIGTERM the caller turned into KeyboardInterrupt); it
            carries how many tracks this run embedded and kept.
    """
    began = time.perf_counter()
    check_output(config.output)
    scan = scan_inputs(list(config.inputs), config.include, config.exclude)
    # The decode workers start (~0.3 s each: a process, its imports) while the model loads.
    pool = start_pool(min(config.decode_workers, len(scan.files)), decode)
    try:
        return _extract(config, scan, pool, progress, decode, began)
    finally:
        if pool is not None:
            pool.close()


def _extract(
    config: ExtractConfig,
    scan: Scan,
    pool: DecodePool | None,
    progress: Progress | None,
    decode: DecodeFn,
    began: float,
) -> ExtractSummary:
    model = open_model(config)
    run = ExtractRun(config, model, scan, pool, decode=decode)
    return extract_with(run, began, progress, ExtractRun.embed)


# The embedding step of a run: plan, embed the planned files, finish (`ExtractRun.embed` does it
# with local decode workers; `extract --ray` on a Ray cluster).
EmbedStep = Callable[["ExtractRun", StoreWriter, WindowSpec, "Progress | None"], None]


def extract_with(
    run: ExtractRun, began: float, progress: Progress | None, embed: EmbedStep
) -> ExtractSummary:
    """Open the store for `run` and let `embed` fill it; the summary, even when writing fails."""
    config, info = run.config, run.model.info
    check_batch_memory(config.batch_size, info.window_samples, available_memory())
    spec = WindowSpec.from_hop_seconds(info.sample_rate, info.window_samples, config.hop_seconds)
    header = _header(run.model, spec, config.decoder)
    store = open_writer(config.output, header, force=config.force)
    store.record_roots(run.scan.roots)  # where serve finds the tracks' audio
    try:
        with store:
            embed(run, store, spec, progress)
    except StoreError as exc:  # what was journaled is kept; the next run merges it
        run.store_error = str(exc)
    except KeyboardInterrupt:
        raise Interrupted(len(run.outcome.embedded)) from None
    return run.summary(time.perf_counter() - began)

"""`extract --ray`: decode in Ray tasks, embed in an actor pool into shards, merge them into OUT."""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clmr_embed.audio import WindowSpec
from clmr_embed.choices import Device
from clmr_embed.errors import ConfigError, MissingDependencyError
from clmr_embed.extract.batches import BatchRunner, EmbeddedTrack
from clmr_embed.extract.config import ExtractConfig
from clmr_embed.extract.messages import DecodeJob, Message
from clmr_embed.extract.plan import PlannedTrack
from clmr_embed.extract.run import ExtractRun, check_output, extract_with, open_model
from clmr_embed.extract.summary import ExtractSummary, FailedFile
from clmr_embed.extract.workers import decode_track
from clmr_embed.names import shown
from clmr_embed.progress import Progress
from clmr_embed.scan import scan_inputs
from clmr_embed.store import StoreHeader, StoreWriter, merge_into, open_store, open_writer

LOCAL = "local"  # the address that starts a Ray instance on this machine for the run
CALLS_PER_ACTOR = 2  # files queued on an actor: one embedding, the next one ready behind it
RETRIES = 3  # a killed decode task or actor is restarted this often before its file fails


@dataclass(frozen=True)
class ClusterConfig:
    """Where and how wide `extract --ray` runs."""

    address: str = LOCAL  # "local": start Ray here; else ray.init's ("auto", "ray://host:10001")
    actors: int = 0  # embedding actors, each one engine session and one shard; 0: CPUs // 2
    decode_cpus: float = 1.0  # CPUs a decode task reserves (fractions pack more per node)

    def __post_init__(self) -> None:
        if self.actors < 0 or not self.decode_cpus > 0:
            raise ConfigError(
                f"ray actors must be >= 0 and decode CPUs > 0, got {self.actors}, "
                f"{self.decode_cpus}"
            )


def shard_folder(output: Path) -> Path:
    """Where the actors' shard stores live until they are merged: `<OUT>.shards/`."""
    return output.with_name(output.name + ".shards")


def decode_file(job: DecodeJob) -> list[Message]:
    """A Ray task: one file's window chunks and its Decoded (or Failed) message."""
    return list(decode_track(job))


class EmbeddingActor:
    """A Ray actor: one engine session, and the shard store it journals each track into.

    A restarted actor reopens its shard, whose journal keeps every track it had finished.
    """

    def __init__(self, config: ExtractConfig, shard: Path, header: StoreHeader) -> None:
        self.config = dataclasses.replace(config, workers=0)  # batches end with each file
        self.model = open_model(config)
        self.store = open_writer(shard, header)

    def embed(self, track: PlannedTrack, messages: list[Message]) -> EmbeddedTrack | FailedFile:
        """Embed one decoded file (its messages are job 0) and journal it in the shard."""
        outcome = BatchRunner(self.model, self.store, self.config).run([track], messages)
        return outcome.embedded[0] if outcome.embedded else outcome.failed[0]

    def close(self) -> None:
        self.store.close()


def run_extract_ray(
    config: ExtractConfig, cluster: ClusterConfig, progress: Progress | None = None
) -> ExtractSummary:
    """`run_extract` on a Ray cluster; the same store, summary and failure records.

    Shards a killed run left behind are merged first, so a rerun skips every track already in
    OUT or in any shard. The audio, the model and OUT's folder must be at the same paths on
    every node (a shared file system); docs/scale.md says how to lay a cluster out.

    Raises:
        MissingDependencyError: Ray is not installed (the `ray` extra).
        StoreError, ConfigError, Interrupted: as `run_extract`.
    """
    ray = _import_ray()
    began = time.perf_counter()
    check_output(config.output)  # before Ray starts: a typo in OUT's folder costs nothing
    scan = scan_inputs(list(config.inputs), config.include, config.exclude)
    run = ExtractRun(config, open_model(config), scan)
    started = _connect(ray, cluster)
    try:
        return extract_with(run, began, progress, _RayStep(ray, cluster))
    finally:
        if started:
            ray.shutdown()


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MissingDependencyError(
            "extracting on Ray needs Ray: pip install 'clmr-embed[ray]'"
        ) from None
    return ray


def _connect(ray: Any, cluster: ClusterConfig) -> bool:
    """Join the cluster (or start a local one); True when this run started it."""
    if ray.is_initialized():
        return False
    address = None if cluster.address == LOCAL else cluster.address  # None: start one here
    ray.init(address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    return True  # shutdown then stops a local Ray, or only disconnects from a cluster


@dataclass
class _RayStep:
    """The embedding step of a --ray run (see `extract_with`)."""

    ray: Any
    cluster: ClusterConfig

    def __call__(
        self, run: ExtractRun, store: StoreWriter, spec: WindowSpec, progress: Progress | None
    ) -> None:
        folder = shard_folder(store.path)
        if run.config.force:
            shutil.rmtree(folder, ignore_errors=True)  # shards of the store being replaced
        _merge_shards(store, folder)  # a killed run's: their tracks are not planned again
        jobs = run.prepare(store, spec, progress)
        if jobs:
            actors = self._actors(run.config, folder, store.header, len(jobs))
            dispatch = _Dispatch(self.ray, actors, run, progress)
            try:
                dispatch.run(jobs, self.cluster.decode_cpus)
                self.ray.get([actor.close.remote() for actor in actors])
            finally:
                for actor in actors:
                    self.ray.kill(actor)
            _merge_shards(store, folder)
            for failure in dispatch.lost:  # the actors recorded the files that failed to decode
                store.add_error(failure.path, failure.reason)
        run.finish(store)

    def _actors(
        self, config: ExtractConfig, folder: Path, header: StoreHeader, n: int
    ) -> list[Any]:
        resources = self.ray.cluster_resources()
        cpus = float(resources.get("CPU", 1))
        count = min(n, self.cluster.actors or max(1, int(cpus) // 2))
        # Ray's CPUs are reservations: actors holding every CPU would starve the decode tasks
        # their files wait for, so at least one decode task's share stays free.
        share = min(1.0, (cpus - self.cluster.decode_cpus) / count)
        if share <= 0:
            raise ConfigError(
                f"the Ray cluster has {cpus:g} CPUs: too few for {count} embedding actors and "
                f"decode tasks of {self.cluster.decode_cpus:g} CPU; add CPUs or ask for fewer "
                "actors"
            )
        threads = config.threads or max(1, int(cpus) // count - 1)  # the rest decodes
        config = dataclasses.replace(config, threads=threads)
        folder.mkdir(exist_ok=True)
        # GPU actors where the cluster has GPUs (and the run may use CUDA): Ray then places
        # each on a GPU node and sets CUDA_VISIBLE_DEVICES; the engine picks CUDA as usual.
        gpus = float(resources.get("GPU", 0))
        per_gpu = min(1.0, gpus / count) if gpus and config.device is not Device.cpu else 0
        remote = self.ray.remote(EmbeddingActor).options(
            num_cpus=share, num_gpus=per_gpu, max_restarts=RETRIES, max_task_retries=RETRIES
        )
        return [remote.remote(config, folder / f"shard-{i:03d}.h5", header) for i in range(count)]


def _merge_shards(store: StoreWriter, folder: Path) -> None:
    """Journal the shard stores in `folder` into `store`, commit, then delete them."""
    paths = sorted(folder.glob("shard-*.h5")) if folder.is_dir() else []
    for path in paths:  # a killed actor's journal: its finished tracks are committed first
        open_writer(path, store.header).close()
    stores = [open_store(path) for path in paths]
    try:
        merge_into(store, stores)
        store.commit()
    finally:
        for shard in stores:
            shard.close()
    shutil.rmtree(folder, ignore_errors=True)


class _Dispatch:
    """Feeds decode tasks and the actors: at most CALLS_PER_ACTOR files queued on each."""

    def __init__(
        self, ray: Any, actors: list[Any], run: ExtractRun, progress: Progress | None
    ) -> None:
        self.ray, self.actors, self.extract, self.progress = ray, actors, run, progress
        self.decoding: dict[Any, int] = {}  # decode task -> job index
        self.embedding: dict[Any, tuple[int, int]] = {}  # actor call -> (job index, actor)
        self.decoded: deque[tuple[int, Any]] = deque()  # (job index, messages) for an actor
        self.busy = [0] * len(actors)  # calls queued per actor
        self.lost: list[FailedFile] = []  # files whose task or actor Ray gave up on

    def run(self, jobs: list[DecodeJob], decode_cpus: float) -> None:
        task = self.ray.remote(decode_file).options(num_cpus=decode_cpus, max_retries=RETRIES)
        waiting = deque(jobs)
        window = len(self.actors) * CALLS_PER_ACTOR * 2  # decoded files in flight at most
        while waiting or self.decoding or self.embedding or self.decoded:
            while waiting and len(self.decoding) + len(self.decoded) < window:
                job = waiting.popleft()
                self.decoding[task.remote(dataclasses.replace(job, index=0))] = job.index
            self._assign()
            refs = [*self.decoding, *self.embedding]
            ready, _ = self.ray.wait(refs, num_returns=1, fetch_local=False)
            for ref in ready:
                if ref in self.decoding:
                    self.decoded.append((self.decoding.pop(ref), ref))
                else:
                    self._finished(ref)

    def _assign(self) -> None:
        while self.decoded and min(self.busy) < CALLS_PER_ACTOR:
            index, messages = self.decoded.popleft()
            actor = self.busy.index(min(self.busy))
            track = self.extract.plan.todo[index]
            self.embedding[self.actors[actor].embed.remote(track, messages)] = (index, actor)
            self.busy[actor] += 1

    def _finished(self, ref: Any) -> None:
        index, actor = self.embedding.pop(ref)
        self.busy[actor] -= 1
        track = self.extract.plan.todo[index]
        try:
            result = self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:  # a decode task or actor lost for good
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            reason = f"{shown(track.file.path)}: lost on the Ray cluster ({first}); rerun"
            result = FailedFile(track.file.relpath, reason)
            self.lost.append(result)
        if isinstance(result, FailedFile):
            self.extract.outcome.failed.append(result)
        else:
            self.extract.outcome.embedded.append(result)
        if self.progress is not None:
            duration = result.duration_s if isinstance(result, EmbeddedTrack) else 0.0
            self.progress.advance(track.file.relpath, duration)

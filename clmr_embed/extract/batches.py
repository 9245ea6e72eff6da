"""Pack windows of many files into full model batches; journal each finished track in the store."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from clmr_embed.audio import DecodedFile
from clmr_embed.engines import Engine
from clmr_embed.extract.config import ExtractConfig
from clmr_embed.extract.messages import Decoded, Failed, Message, Windows
from clmr_embed.extract.plan import PlannedTrack
from clmr_embed.extract.summary import FailedFile
from clmr_embed.progress import Progress
from clmr_embed.store import StoreWriter, TrackRecord

# Debug records "track ID started: PATH" (its first batch ran) and "track ID journaled: PATH"
# (it is safe on disk): `clmr-embed extract --log-file` writes them, one line each, at once.
log = logging.getLogger(__name__)


class EmbeddedTrack(NamedTuple):
    """A track this run embedded and journaled."""

    relpath: str
    duration_s: float
    flags: tuple[str, ...]


@dataclass
class Outcome:
    """What the batches did to the planned tracks."""

    embedded: list[EmbeddedTrack] = field(default_factory=list)
    failed: list[FailedFile] = field(default_factory=list)


@dataclass
class _Track:
    """A track in flight: its windows' embeddings arrive in order, batch by batch."""

    planned: PlannedTrack
    embeddings: list[np.ndarray] = field(default_factory=list)
    starts: list[np.ndarray] = field(default_factory=list)
    queued: int = 0  # windows waiting in the batch buffer
    decoded: DecodedFile | None = None  # set once the whole file is decoded
    started: bool = False


class BatchRunner:
    """Runs the model over full batches of windows and writes finished tracks to the store."""

    def __init__(
        self,
        model: Engine,
        store: StoreWriter,
        config: ExtractConfig,
        progress: Progress | None = None,
        outcome: Outcome | None = None,
    ) -> None:
        self.model = model
        self.store = store
        self.config = config
        self.progress = progress
        self.outcome = outcome or Outcome()  # the caller's, so an interrupt can count the kept
        self.tracks: dict[int, _Track] = {}
        self.buffer: deque[Windows] = deque()  # windows waiting for a full batch
        self.buffered = 0
        self.since_commit = 0
        self.last_commit = time.perf_counter()

    def run(self, todo: list[PlannedTrack], messages: Iterable[Message | None]) -> Outcome:
        """Consume decode messages for `todo` (indexed by position) until every track is done."""
        self.tracks = {index: _Track(planned) for index, planned in enumerate(todo)}
        for message in messages:
            if isinstance(message, Windows):
                self.buffer.append(message)
                self.buffered += len(message.windows)
                self.tracks[message.job].queued += len(message.windows)
                self._flush(partial=False)
            elif isinstance(message, Decoded):
                self.tracks[message.job].decoded = message.file
                if self.config.decode_workers <= 0 or self._waiting_on_buffer():
                    self._flush(partial=True)
                self._maybe_finish(message.job)
            elif isinstance(message, Failed):
                self._fail(message.job, message.reason)
            elif self._waiting_on_buffer():  # None: the workers are busy, run what is queued
                self._flush(partial=True)
        self._flush(partial=True)
        return self.outcome

    def _waiting_on_buffer(self) -> bool:
        return any(t.decoded is not None and t.queued for t in self.tracks.values())

    def _flush(self, partial: bool) -> None:
        size = self.config.batch_size
        while self.buffered >= size or (partial and self.buffered):
            take, parts = min(size, self.buffered), []
            while take:
                head = self.buffer[0]
                n = min(take, len(head.windows))
                parts.append(Windows(head.job, head.windows[:n], head.starts[:n]))
                if n == len(head.windows):
                    self.buffer.popleft()
                else:
                    self.buffer[0] = Windows(head.job, head.windows[n:], head.starts[n:])
                take -= n
            self._run_batch(parts)

    def _run_batch(self, parts: list[Windows]) -> None:
        for part in parts:
            track = self.tracks[part.job]
            if not track.started:
                track.started = True
                log.debug(
                    "track %s started: %s", track.planned.track_id, track.planned.file.relpath
                )
        embeddings, _ = self.model.run(np.concatenate([part.windows for part in parts]))
        offset = 0
        for part in parts:
            track = self.tracks[part.job]
            track.embeddings.append(embeddings[offset : offset + len(part.windows)])
            track.starts.append(part.starts)
            track.queued -= len(part.windows)
            self.buffered -= len(part.windows)
            offset += len(part.windows)
        for index in {part.job for part in parts}:
            self._maybe_finish(index)

    def _maybe_finish(self, index: int) -> None:
        track = self.tracks.get(index)
        if track is None or track.decoded is None or track.queued:
            return
        decoded, planned = track.decoded, track.planned
        rate = self.model.info.sample_rate
        record = TrackRecord(
            track_id=planned.track_id,
            relpath=planned.file.relpath,
            content_sha256=planned.content,
            duration_s=decoded.duration_s,
            source_rate=decoded.source_rate,
            channels=decoded.channels,
            embeddings=np.concatenate(track.embeddings).astype(np.float32),
            starts_s=(np.concatenate(track.starts) / rate).astype(np.float32),
            flags=decoded.flags,
        )
        self.store.add_track(record)
        # counted as soon as it is journaled, so an interrupt from here on reports it as kept
        self.outcome.embedded.append(
            EmbeddedTrack(planned.file.relpath, decoded.duration_s, decoded.flags)
        )
        del self.tracks[index]
        self.store.clear_error(planned.file.relpath)
        log.debug("track %s journaled: %s", planned.track_id, planned.file.relpath)
        self._after_track(planned.file.relpath, decoded.duration_s)

    def _fail(self, index: int, reason: str) -> None:
        track = self.tracks.pop(index)
        if track.queued:  # drop its windows still waiting for the model
            self.buffered -= track.queued
            self.buffer = deque(item for item in self.buffer if item.job != index)
        self.store.add_error(track.planned.file.relpath, reason)
        self.outcome.failed.append(FailedFile(track.planned.file.relpath, reason))
        self._after_track(track.planned.file.relpath, 0.0)

    def _after_track(self, relpath: str, duration_s: float) -> None:
        self.since_commit += 1
        # A commit copies the whole store (copy-on-write), so its cost grows with the store: commit
        # every N tracks, or when 10x the last commit's time has passed (at most ~10% overhead).
        # Finished tracks are safe in the journal either way.
        waited = time.perf_counter() - self.last_commit
        due = waited >= max(30.0, 10 * self.store.last_commit_s)
        if self.since_commit >= self.config.commit_every or due:
            self.store.commit()
            self.since_commit = 0
            self.last_commit = time.perf_counter()
        if self.progress:
            self.progress.advance(relpath, duration_s)

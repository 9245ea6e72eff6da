"""The typed result of an extract run, and its `--json` form."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple


class FailedFile(NamedTuple):
    """A file that could not be embedded."""

    path: str  # relpath in the library
    reason: str  # one line naming the file and the fix


class FlaggedFile(NamedTuple):
    """An embedded file whose embeddings deserve a second look."""

    path: str  # relpath in the library
    # "short" (zero-padded to one window), "silent" (all zeros), "truncated" (decoded clearly
    # shorter than its header says), "gaps" (damaged packets were skipped)
    flags: tuple[str, ...]


class SkippedPath(NamedTuple):
    """A path the scan passed over that loses no audio: a broken link, a link loop, a FIFO."""

    path: str  # relpath in the library
    reason: str  # one line naming it


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped a run; the tracks it finished are kept (journaled)."""

    def __init__(self, kept: int) -> None:
        super().__init__(kept)
        self.kept = kept  # tracks embedded by this run before it stopped


@dataclass(frozen=True)
class ExtractSummary:
    """What a run did; `exit_code` is 1 when any file failed."""

    store: str  # the store's path
    model_name: str  # from the model's metadata
    model_sha256: str  # of the ONNX file
    model_trained: bool  # False for random-init placeholder weights
    files: int  # audio files found
    embedded: int  # decoded and embedded this run
    unchanged: int  # already in the store with the same content
    aliased: int  # content identical to another track's: stored as an alias
    failed: tuple[FailedFile, ...]
    flagged: tuple[FlaggedFile, ...]
    skipped: tuple[SkippedPath, ...]
    missing: tuple[str, ...]  # stored relpaths no longer found
    pruned: int  # stored tracks removed because their files are gone
    duration_s: float  # audio embedded this run
    wall_s: float  # the run's wall-clock time
    damaged: tuple[str, ...] = ()  # stored relpaths whose embeddings failed their checksum
    repaired: int = 0  # of those, re-embedded (or re-aliased) from their audio this run
    store_error: str = ""  # why writing the store stopped the run (a full disk), else ""
    engine: str = "onnxruntime"  # the engine that ran the model
    precision: str = "fp32"  # the precision that actually ran (and the store records)
    engine_detail: str = ""  # how, e.g. "int8 on OpenVINO CPU, float blocks 0 in bf16"
    workers: int = 0  # decode processes the run started (0: it decoded in the main process)
    workers_auto: bool = False  # `workers` was picked by --workers auto

    @property
    def exit_code(self) -> int:
        """1 when any file failed or the store could not be written, else 0."""
        return 1 if self.failed or self.store_error else 0

    @property
    def x_realtime(self) -> float:
        """Audio seconds embedded per wall-clock second."""
        return self.duration_s / self.wall_s if self.wall_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The `--json` object (its keys are an interface: keep them)."""
        return {
            "store": self.store,
            "model": {
                "name": self.model_name,
                "sha256": self.model_sha256,
                "trained": self.model_trained,
            },
            "engine": {
                "name": self.engine,
                "precision": self.precision,
                "detail": self.engine_detail,
            },
            "workers": {"decode": self.workers, "auto": self.workers_auto},
            "files": self.files,
            "embedded": self.embedded,
            "unchanged": self.unchanged,
            "aliased": self.aliased,
            "failed": [{"path": f.path, "reason": f.reason} for f in self.failed],
            "flagged": [{"path": f.path, "flags": list(f.flags)} for f in self.flagged],
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
            "missing": list(self.missing),
            "pruned": self.pruned,
            "damaged": list(self.damaged),
            "repaired": self.repaired,
            "store_error": self.store_error or None,
            "audio_seconds": round(self.duration_s, 3),
            "wall_seconds": round(self.wall_s, 3),
            "x_realtime": round(self.x_realtime, 2),
            "exit_code": self.exit_code,
        }

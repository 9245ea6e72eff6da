"""The options of an extract run and the progress protocol it reports to."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from clmr_embed.errors import ConfigError


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
    force: bool = False  # start a new store even if the output was made with another model/hop
    prune: bool = False  # remove tracks whose files disappeared
    include: tuple[str, ...] = ()  # globs a file must match (relative path or name)
    exclude: tuple[str, ...] = ()  # globs that drop a file
    decoder: str = "av"  # "av" (PyAV/FFmpeg) or "soundfile" (libsndfile)
    commit_every: int = 200  # merge the journal into the store after this many tracks (or a timer)
    trace: Path | None = None  # append "start ID"/"done ID" lines (tests count model work)

    def __post_init__(self) -> None:
        counts = {
            "batch_size": (self.batch_size, 1),
            "workers": (self.workers, 0),
            "threads": (self.threads, 0),
            "commit_every": (self.commit_every, 1),
        }
        for name, (value, least) in counts.items():
            if value < least:
                raise ConfigError(f"extract {name} must be at least {least}, got {value}")


class Progress(Protocol):
    """Where a run reports progress (the CLI draws a rich bar; None is silent)."""

    def start(self, total_files: int) -> None: ...
    def advance(self, relpath: str, duration_s: float) -> None: ...

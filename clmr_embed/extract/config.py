"""The options of an extract run and the memory it may take."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from clmr_embed.choices import Decoder, Device, EngineName, Precision, typed
from clmr_embed.engines import EngineConfig
from clmr_embed.errors import ConfigError

# onnxruntime's peak memory per window, in bytes per input sample: SampleCNN keeps about 100
# float32 activations per sample alive (measured: 20-23 MB for a 59049-sample window).
BATCH_BYTES_PER_SAMPLE = 400
BATCH_MEMORY_SHARE = 0.5  # of the available memory one batch may take; workers need the rest
# A decode worker's peak RSS (measured 138-160 MB on the demo songs, docs/performance.md), with
# room for a long file's windows in flight; `--workers auto` starts no more than a quarter of the
# available memory holds.
WORKER_BYTES = 256 * 2**20
WORKER_MEMORY_SHARE = 0.25


@dataclass(frozen=True)
class ExtractConfig:
    """Options of one extract run."""

    inputs: tuple[Path, ...]  # audio files and/or folders (scanned recursively)
    output: Path  # the HDF5 store
    model: str | None = None  # registered name or ONNX path; None: the default model
    hop_seconds: float | None = None  # None: the model's window (back-to-back chunks, as CLMR)
    batch_size: int = 16  # windows per onnxruntime call; windows of many files are packed
    workers: int | None = None  # decode processes; 0: in the main process; None: auto_workers
    device: Device = Device.auto  # auto, cpu or cuda
    threads: int = 0  # engine intra-op threads; 0: the engine's choice (all cores)
    precision: Precision = Precision.fp32  # fp32 (onnxruntime, the reference numbers), bf16, ...
    engine: EngineName | None = None  # onnxruntime or openvino; None: the precision's choice
    force: bool = False  # start a new store even if the output was made with another model/hop
    prune: bool = False  # remove tracks whose files disappeared
    include: tuple[str, ...] = ()  # globs a file must match (relative path or name)
    exclude: tuple[str, ...] = ()  # globs that drop a file
    decoder: Decoder = Decoder.av  # av (PyAV/FFmpeg) or soundfile (libsndfile)
    commit_every: int = 200  # merge the journal into the store after this many tracks (or a timer)
    # onnxruntime's idle threads spin; None: only when no decode worker shares the cores
    spin: bool | None = None
    # the engine settings, made (and so validated) once from the fields above
    engine_config: EngineConfig = field(init=False, repr=False, compare=False)
    # the decode processes to start: `workers`, or auto_workers' pick for None
    decode_workers: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # strings become the typed choices here, once (EngineConfig checks the combination)
        object.__setattr__(self, "decoder", typed(Decoder, self.decoder, "extract decoder"))
        # onnxruntime's threads spin only where no decode worker shares the cores (spinning
        # threads take the CPU the decoders need; docs/performance.md)
        workers = auto_workers(available_memory()) if self.workers is None else self.workers
        object.__setattr__(self, "decode_workers", workers)
        spin = workers == 0 if self.spin is None else self.spin
        choice = EngineConfig(self.precision, self.engine, self.device, self.threads, spin=spin)
        object.__setattr__(self, "engine_config", choice)
        for name in ("precision", "engine", "device"):
            object.__setattr__(self, name, getattr(choice, name))
        counts = {
            "batch_size": (self.batch_size, 1),
            "workers": (workers, 0),
            "threads": (self.threads, 0),
            "commit_every": (self.commit_every, 1),
        }
        for name, (value, least) in counts.items():
            if value < least:
                raise ConfigError(f"extract {name} must be at least {least}, got {value}")


def auto_workers(available: int | None) -> int:
    """`--workers auto`: one decode process per usable core, no more than WORKER_MEMORY_SHARE of
    the `available` memory holds, at least one (the run starts at most one per file).

    One per core, not the decode share of the CPU (8-30 % here, which would give one worker):
    on 2 cores two workers beat one on every engine (docs/performance.md), because a worker that
    waits on the queue costs no CPU while one too few leaves the model waiting.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    wanted = cores or 1
    if available is not None:
        wanted = min(wanted, int(available * WORKER_MEMORY_SHARE // WORKER_BYTES))
    return max(wanted, 1)


def available_memory() -> int | None:
    """Bytes of memory this process can still use: MemAvailable, capped by a cgroup limit."""
    found = [n for n in (_meminfo_available(), _cgroup_available()) if n is not None]
    return min(found) if found else None


def _meminfo_available() -> int | None:
    with contextlib.suppress(OSError, ValueError), open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return None


def _cgroup_available() -> int | None:
    """A container's limit (cgroup v2) binds before the machine's memory does."""
    with contextlib.suppress(OSError, ValueError):  # no cgroup v2, or "max": no limit
        limit = Path("/sys/fs/cgroup/memory.max").read_text()
        used = Path("/sys/fs/cgroup/memory.current").read_text()
        return int(limit) - int(used)
    return None


def check_batch_memory(batch_size: int, window_samples: int, available: int | None) -> None:
    """Refuse a batch whose model call would not fit in memory (the OS would kill the run).

    Raises:
        ConfigError: naming the estimate and the largest batch size that fits.
    """
    if available is None:
        return  # cannot tell: let it run
    per_window = window_samples * BATCH_BYTES_PER_SAMPLE
    fits = max(1, int(available * BATCH_MEMORY_SHARE // per_window))
    if batch_size > fits:
        raise ConfigError(
            f"batch_size {batch_size} needs about {batch_size * per_window / 1e9:.1f} GB for "
            f"{window_samples}-sample windows; at most {fits} fit in the "
            f"{available / 1e9:.1f} GB of memory available"
        )

"""First-use check of a path (engine + precision) against fp32 on the reference windows, cached.

A low-precision path is used on a machine only after its embeddings of the shipped reference
windows reach a centred cosine of MIN_COSINE to onnxruntime fp32's on every window. The result,
and the path's speed on those windows, is cached per model file, engine, precision and CPU, so
the check runs once; a path that failed it is refused, never used silently.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from clmr_embed.atomic import write_text
from clmr_embed.engines.engine import Engine, PrecisionError
from clmr_embed.engines.reference import ReferenceWindows, load_reference
from clmr_embed.registry import cache_dir

MIN_COSINE = 0.99  # per-window centred cosine to fp32 that every window must reach
CHECK_VERSION = 1  # part of the cache key: bump when the check changes, old results lapse
CACHE_NAME = "precision-checks.json"


@dataclass(frozen=True)
class CheckResult:
    """One path's check on one machine."""

    key: str  # cache key: check version, model sha256, engine and version, precision, CPU
    engine: str  # "onnxruntime" or "openvino"
    requested: str  # the precision asked for
    precision: str  # the precision that ran (a bf16 request may run fp32)
    cosine_min: float  # lowest per-window centred cosine to fp32
    cosine_mean: float  # mean of the per-window centred cosines
    windows_per_s: float  # the path's speed on the reference windows (one batch)
    passed: bool  # cosine_min >= MIN_COSINE

    def refusal(self) -> str:
        """The one-line reason a failed path is refused."""
        return (
            f"{self.engine} {self.requested} is refused on this machine: its embeddings of the "
            f"reference windows reach a centred cosine of only {self.cosine_min:.4f} to fp32 "
            f"(needs {MIN_COSINE}); use fp32 or another engine"
        )


def cpu_identity() -> str:
    """The CPU model and a hash of its feature flags (bf16/AMX/VNNI change what runs)."""
    name, flags = platform.processor() or platform.machine(), ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and name in ("", platform.machine()):
                name = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = value.strip()
    return f"{name} [{hashlib.sha256(flags.encode()).hexdigest()[:12]}]"


def check_key(model_sha256: str, engine: str, version: str, requested: str) -> str:
    """Cache key of a path: everything that changes its numbers."""
    parts = [f"v{CHECK_VERSION}", model_sha256, f"{engine}-{version}", requested, cpu_identity()]
    return "|".join(parts)


def cache_path() -> Path:
    """The check results' file in clmr-embed's cache folder."""
    return cache_dir() / CACHE_NAME


def lookup(key: str, cache: Path | None = None) -> CheckResult | None:
    """The cached result of a path, None when it was not checked yet."""
    entry = _read_cache(cache or cache_path()).get(key)
    return CheckResult(**entry) if entry is not None else None


def window_cosines(candidate: npt.ArrayLike, reference: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Per-window cosine of candidate and reference embeddings (n, dim), both centred by the
    reference's mean over the n windows (the direction all windows share would make every
    cosine close to 1)."""
    ref = np.asarray(reference, dtype=np.float64)
    mean = ref.mean(axis=0, keepdims=True)
    a, b = np.asarray(candidate, dtype=np.float64) - mean, ref - mean
    norms = np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    return np.asarray((a * b).sum(axis=1) / norms)


def timed_embeddings(
    engine: Engine, windows: npt.NDArray[np.float32]
) -> tuple[npt.NDArray[np.float32], float]:
    """The engine's embeddings of one batch and its speed in windows/s (after a warm-up run)."""
    engine.run(windows)
    began = time.perf_counter()
    embeddings, _ = engine.run(windows)
    return embeddings, len(windows) / max(time.perf_counter() - began, 1e-9)


def run_check(
    candidate: Engine, reference: Engine, windows: npt.NDArray[np.float32], requested: str
) -> CheckResult:
    """Compare the candidate's embeddings of `windows` with the fp32 reference's."""
    got, speed = timed_embeddings(candidate, windows)
    want, _ = reference.run(windows)
    cosines = window_cosines(got, want)
    return CheckResult(
        key="",
        engine=candidate.engine,
        requested=requested,
        precision=candidate.precision,
        cosine_min=float(cosines.min()),
        cosine_mean=float(cosines.mean()),
        windows_per_s=float(speed),
        passed=bool(cosines.min() >= MIN_COSINE),
    )


@dataclass(frozen=True)
class Check:
    """What `validate` needs besides the candidate."""

    reference: Callable[[], Engine]  # builds the fp32 reference (only when not cached)
    requested: str  # the precision asked for
    cache: Path | None = None  # the cache file; None: <cache_dir>/precision-checks.json
    windows: ReferenceWindows | None = None  # None: the shipped reference windows


def validate(candidate: Engine, check: Check) -> CheckResult:
    """The candidate's check result, from the cache or run now and cached.

    Raises:
        PrecisionError: the path failed (now or when first checked).
    """
    cache = check.cache or cache_path()
    key = check_key(candidate.sha256, candidate.engine, candidate.version, check.requested)
    results = _read_cache(cache)
    if key in results:
        result = CheckResult(**results[key])
    else:
        reference = check.windows or load_reference()
        windows = reference.windows(candidate.info.sample_rate, candidate.info.window_samples)
        found = run_check(candidate, check.reference(), windows, check.requested)
        result = CheckResult(**{**asdict(found), "key": key})
        results[key] = asdict(result)
        write_text(cache, json.dumps(results, indent=1, sort_keys=True) + "\n")
    if not result.passed:
        raise PrecisionError(result.refusal())
    return result


def _read_cache(path: Path) -> dict[str, dict[str, Any]]:
    """Cached results by key; an unreadable cache counts as empty (it is rewritten)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    fields = set(CheckResult.__dataclass_fields__)
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, dict) and set(v) == fields}

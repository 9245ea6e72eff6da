"""What every inference engine offers (the Engine protocol) and the one validated engine choice."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from clmr_embed.artifact import ModelInfo
from clmr_embed.choices import (
    ENGINES,
    REFERENCE,
    Device,
    EngineName,
    Precision,
    runs_on,
)
from clmr_embed.errors import ClmrEmbedError, ConfigError

PRECISIONS = tuple(p.value for p in Precision)  # what --precision accepts
__all__ = ["ENGINES", "PRECISIONS", "REFERENCE", "Engine", "EngineConfig", "PrecisionError"]

Output = tuple[npt.NDArray[np.float32], npt.NDArray[np.float32] | None]


class PrecisionError(ClmrEmbedError):
    """A low-precision path failed its check against fp32 on this machine and is refused."""


class Engine(Protocol):
    """A loaded encoder or tagger ONNX file that embeds batches of windows."""

    info: ModelInfo  # the file's clmr.* metadata
    path: Path  # the file it runs (the int8 file for precision "int8")
    sha256: str  # sha256 of the fp32 model file (the model's identity, whatever runs it)
    engine: str  # "onnxruntime" or "openvino"
    version: str  # the engine library's version
    precision: str  # what actually runs: "fp32", "bf16" or "int8"
    detail: str  # one line on how, e.g. "int8, float blocks 0,1 in bf16"

    def run(self, windows: npt.NDArray[np.float32]) -> Output:
        """(embeddings (batch, dim), logits (batch, labels) or None) of float32 (batch, window)."""
        ...


@dataclass(frozen=True)
class EngineConfig:
    """Which engine and precision to run a model with: validated here, once.

    Strings are accepted and become the typed choices (clmr_embed.choices); an unknown value
    or an impossible combination raises ConfigError when the config is made, so code that
    holds an EngineConfig never checks it again.
    """

    # (a str given is made the enum member in __post_init__; mypy sees the union)
    precision: Precision | str = Precision.fp32  # fp32 (today's numbers), bf16, int8 or auto
    engine: EngineName | str | None = (
        None  # an engine of choices.ENGINE_TABLE; None: the precision's
    )
    device: Device | str = Device.auto  # onnxruntime's auto, cpu or cuda; low precisions: CPU
    threads: int = 0  # intra-op threads; 0 lets the engine choose (all cores)
    spin: bool = True  # onnxruntime's idle intra-op threads spin; False when decoders share cores
    validate: bool = True  # check a non-reference path against fp32 on first use (cached)

    def __post_init__(self) -> None:
        precision, engine, device = self.precision, self.engine, self.device
        known = Precision.__members__.get(str(precision)), Device.__members__.get(str(device))
        if None in known or (engine is not None and engine not in ENGINES):
            raise ConfigError(
                f"precision {precision!r} / engine {engine!r} / device {device!r}: expected a "
                f"precision in {list(PRECISIONS)}, an engine in {list(ENGINES)} and a device "
                f"in {[d.value for d in Device]}"
            )
        object.__setattr__(self, "precision", Precision(precision))
        object.__setattr__(self, "device", Device(device))
        if engine is not None:
            object.__setattr__(self, "engine", EngineName(engine))
        if self.precision != "fp32" and self.device == "cuda":
            raise ConfigError(f"precision {str(precision)!r} runs on the CPU, not on device 'cuda'")
        able = runs_on(self.precision) if self.precision != "auto" else ENGINES
        if engine is not None and engine not in able:
            raise ConfigError(
                f"precision {str(precision)!r} runs on {' or '.join(able)}, "
                f"not on engine {str(engine)!r}"
            )

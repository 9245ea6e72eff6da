"""What every inference engine offers (the Engine protocol), the precisions and engine names."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from clmr_embed.artifact import GRAPH_IO, ModelInfo
from clmr_embed.errors import ClmrEmbedError, ModelArtifactError

PRECISIONS = ("fp32", "bf16", "int8", "auto")  # what --precision accepts
ENGINES = ("onnxruntime", "openvino")  # what --engine accepts
EXTRAS = {"onnxruntime": "cpu", "openvino": "openvino"}  # pip install 'clmr-embed[EXTRA]'
REFERENCE = ("onnxruntime", "fp32")  # the path every other one is checked against

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
    """Which engine and precision to run a model with."""

    precision: str = "fp32"  # "fp32" (today's numbers), "bf16", "int8" or "auto"
    engine: str | None = None  # "onnxruntime" or "openvino"; None: the precision's choice
    device: str = "auto"  # onnxruntime's "auto", "cpu" or "cuda"; low precisions are CPU paths
    threads: int = 0  # intra-op threads; 0 lets the engine choose (all cores)
    spin: bool = True  # onnxruntime's idle intra-op threads spin; False when decoders share cores
    validate: bool = True  # check a non-reference path against fp32 on first use (cached)


def check_io(path: Path, kind: str, inputs: Iterable[str], outputs: Iterable[str]) -> None:
    """Refuse a file whose graph inputs/outputs are not those of its kind (artifact.GRAPH_IO).

    Raises:
        ModelArtifactError: a head-only model (engines run audio), or names that do not match.
    """
    if kind == "head":
        raise ModelArtifactError(
            f"{path} is a head-only model (embedding -> logits); "
            "use the encoder or tagger file for audio"
        )
    io = GRAPH_IO[kind]
    found_in, found_out = list(inputs), list(outputs)
    if any(n not in found_in for n in io.inputs) or any(n not in found_out for n in io.outputs):
        raise ModelArtifactError(
            f"{path}: a {kind} must have inputs {list(io.inputs)} and outputs "
            f"{list(io.outputs)}, found inputs {found_in} and outputs {found_out}; re-export it"
        )

"""Parity of exported artifacts (onnxruntime, TorchScript) against their torch model."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import torch
from torch import nn

from clmr_embed.artifact import AUDIO, GraphIO
from clmr_embed.errors import ParityError
from export.torchscript import load_torchscript

# Max abs difference allowed (basic-pitch's regression tolerance), for outputs of magnitude <= 1.
# Larger outputs scale it (tolerance * max|torch output|): float32 rounding grows with magnitude,
# e.g. a random encoder with recalibrated BatchNorm reaches ~100 on noise input.
TOLERANCE = 1e-4
BATCHES = (1, 3, 17)  # batch sizes checked: single, small, and one that is not a power of two

Arrays = dict[str, npt.NDArray[np.float32]]


@dataclass(frozen=True)
class ParityRow:
    """One comparison: an artifact run by a backend on one batch, against torch."""

    artifact: str  # file name
    backend: str  # "onnxruntime" or "torchscript"
    batch: int  # batch size
    max_abs_diff: float  # over every output of the artifact
    max_abs_ref: float = 1.0  # largest |torch output|, which scales the tolerance above 1

    def allowed(self, tolerance: float) -> float:
        """The largest difference this row may show."""
        return tolerance * max(1.0, self.max_abs_ref)


@dataclass(frozen=True)
class Artifact:
    """An exported file and the torch module whose outputs it must reproduce."""

    path: Path  # the file to run (may be a temporary file not yet published)
    io: GraphIO  # the file's input and output names
    input_shape: tuple[int, ...]  # one example without the batch axis, e.g. (1, 59049)
    reference: nn.Module  # torch module (eval mode) giving the expected outputs
    reference_outputs: tuple[str, ...] = ()  # names of its outputs, in order; () = io.outputs
    name: str = ""  # its published file name: .onnx (onnxruntime) or .pt (TorchScript); "" = path's

    @property
    def file_name(self) -> str:
        """The name the parity rows show, whose suffix picks the backend."""
        return self.name or self.path.name


def random_input(name: str, batch: int, shape: tuple[int, ...]) -> npt.NDArray[np.float32]:
    """A seeded random batch (batch, *shape) float32: audio in [-1, 1], or post-ReLU-like
    non-negative embeddings for a head's `embedding` input."""
    rng = np.random.default_rng(batch)  # a different but reproducible batch per size
    if name == AUDIO:
        return rng.uniform(-1.0, 1.0, size=(batch, *shape)).astype(np.float32)
    return np.abs(rng.standard_normal((batch, *shape))).astype(np.float32)


def _as_arrays(outputs: object, names: Sequence[str]) -> Arrays:
    tensors = outputs if isinstance(outputs, tuple | list) else (outputs,)
    return {name: np.asarray(t.detach().numpy()) for name, t in zip(names, tensors, strict=True)}


def _onnx_runner(path: Path, io: GraphIO) -> Callable[[np.ndarray], Arrays]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def run(batch: np.ndarray) -> Arrays:
        outputs = session.run(list(io.outputs), {io.inputs[0]: batch})
        return dict(zip(io.outputs, outputs, strict=True))

    return run


def _torchscript_runner(path: Path, io: GraphIO) -> Callable[[np.ndarray], Arrays]:
    module, _ = load_torchscript(path)

    def run(batch: np.ndarray) -> Arrays:
        with torch.no_grad():
            return _as_arrays(module(torch.from_numpy(batch)), io.outputs)

    return run


def _max_diff(got: Arrays, want: Arrays, names: Sequence[str]) -> float:
    worst = 0.0
    for name in names:
        if got[name].shape != want[name].shape:
            return float("inf")
        worst = max(worst, float(np.max(np.abs(got[name] - want[name]), initial=0.0)))
    return worst


def check_parity(
    artifacts: Sequence[Artifact],
    batches: Sequence[int] = BATCHES,
    tolerance: float = TOLERANCE,
) -> list[ParityRow]:
    """Run every artifact and its torch reference on the same seeded batches and compare.

    Returns:
        One ParityRow per artifact and batch size.

    Raises:
        ParityError: some difference exceeds `tolerance` (or is NaN); the error's `rows`
            attribute holds all the figures.
    """
    rows: list[ParityRow] = []
    expected: dict[tuple[int, int], Arrays] = {}  # (id(reference), batch) -> torch outputs
    for artifact in artifacts:
        onnx_file = Path(artifact.file_name).suffix == ".onnx"
        make = _onnx_runner if onnx_file else _torchscript_runner
        run = make(artifact.path, artifact.io)
        for batch in batches:
            inputs = random_input(artifact.io.inputs[0], batch, artifact.input_shape)
            key = (id(artifact.reference), batch)  # artifacts of one reference share a torch run
            if key not in expected:
                with torch.no_grad():
                    out = artifact.reference(torch.from_numpy(inputs))
                names = artifact.reference_outputs or artifact.io.outputs
                expected[key] = _as_arrays(out, names)
            diff = _max_diff(run(inputs), expected[key], artifact.io.outputs)
            scale = max(float(np.max(np.abs(expected[key][n]))) for n in artifact.io.outputs)
            backend = "onnxruntime" if onnx_file else "torchscript"
            rows.append(ParityRow(artifact.file_name, backend, batch, diff, scale))
    bad = [row for row in rows if not row.max_abs_diff <= row.allowed(tolerance)]
    if bad:
        row = bad[0]
        error = ParityError(
            f"{row.artifact} ({row.backend}, batch {row.batch}) differs from torch by "
            f"{row.max_abs_diff:.3g} > {row.allowed(tolerance):.3g} (outputs up to "
            f"{row.max_abs_ref:.3g}); the export is wrong, do not use it"
        )
        error.rows = rows  # type: ignore[attr-defined]
        raise error
    return rows

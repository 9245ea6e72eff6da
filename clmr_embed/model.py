"""OnnxModel: one onnxruntime session per model file, its metadata contract, batched inference."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from clmr_embed.artifact import (
    AUDIO,
    GRAPH_IO,
    HEAD_IO,
    ModelInfo,
    check_io,
    parse_metadata,
    refuse_head,
)
from clmr_embed.choices import Device
from clmr_embed.digest import file_sha256
from clmr_embed.errors import ConfigError, MissingDependencyError, ModelArtifactError

DEVICES = tuple(d.value for d in Device)  # auto, cpu, cuda
SPINNING_KEY = "session.intra_op.allow_spinning"  # onnxruntime session option: "0" stops spinning


def import_onnxruntime() -> Any:
    """Import onnxruntime, or explain which extra installs it."""
    try:
        import onnxruntime
    except ImportError:
        raise MissingDependencyError(
            "onnxruntime is not installed; install exactly one of "
            "pip install 'clmr-embed[cpu]' or pip install 'clmr-embed[gpu]'"
        ) from None
    return onnxruntime


def choose_providers(device: str, available: list[str]) -> list[str]:
    """onnxruntime execution providers for `device` ("auto", "cpu" or "cuda")."""
    if device not in DEVICES:
        raise ConfigError(f"device must be one of {list(DEVICES)}, got {device!r}")
    has_cuda = "CUDAExecutionProvider" in available
    if device == "cuda" and not has_cuda:
        raise MissingDependencyError(
            "the cuda device was asked for, but this onnxruntime has no CUDA provider "
            f"(available: {available}); pip install 'clmr-embed[gpu]' on a CUDA machine"
        )
    if device in ("cuda", "auto") and has_cuda:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


@dataclass(frozen=True)
class SessionConfig:
    """How to run a model."""

    device: str = "auto"  # "auto" (CUDA when available), "cpu" or "cuda"
    threads: int = 0  # onnxruntime intra-op threads; 0 lets onnxruntime choose (all cores)
    io_binding: bool | None = None  # bind input/outputs on the device; None: on CUDA only
    # intra-op threads spin while waiting for work (onnxruntime's default); False when other
    # processes (extract's decode workers) share the cores, so idle threads yield them
    spin: bool = True


class OnnxModel:
    """An exported clmr-embed ONNX file: its ModelInfo and a cached onnxruntime session.

    Args:
        path: the .onnx file written by `clmr-embed export` (encoder, tagger or head).
        config: device and thread settings.

    Raises:
        ModelArtifactError: not an ONNX file, or its metadata or inputs break the contract.
    """

    def __init__(self, path: Path, config: SessionConfig | None = None) -> None:
        ort = import_onnxruntime()
        self.path = Path(path)
        self.config = config or SessionConfig()
        if not self.path.is_file():
            raise ModelArtifactError(f"model file {self.path} does not exist")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self.config.threads > 0:
            options.intra_op_num_threads = self.config.threads
        if not self.config.spin:
            options.add_session_config_entry(SPINNING_KEY, "0")
        options.log_severity_level = 3  # errors only: provider fallbacks are not the user's problem
        providers = choose_providers(self.config.device, ort.get_available_providers())
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=providers)
        except Exception as exc:  # any error: onnxruntime raises its own hierarchy
            raise ModelArtifactError(
                f"{self.path} is not a loadable ONNX model ({str(exc).splitlines()[0][:160]}); "
                "pass an encoder or tagger .onnx file, a checkpoint (.pt/.ckpt) or a model name"
            ) from None
        cuda = self.providers[0] == "CUDAExecutionProvider"
        bind = cuda if self.config.io_binding is None else self.config.io_binding
        # With IO binding the batch is copied to the device once and the outputs are allocated
        # there, instead of onnxruntime staging both through its own CPU buffers on every call.
        self.binding_device: str | None = ("cuda" if cuda else "cpu") if bind else None
        self._ort = ort
        metadata = self.session.get_modelmeta().custom_metadata_map
        self.info: ModelInfo = parse_metadata(metadata, self.path)
        check_io(
            self.path,
            self.info.kind,
            [i.name for i in self.session.get_inputs()],
            [o.name for o in self.session.get_outputs()],
        )

    @cached_property
    def sha256(self) -> str:
        """sha256 of the file, hashed on first use (an engine running it knows its model's)."""
        return file_sha256(self.path)

    @property
    def providers(self) -> list[str]:
        """Execution providers the session actually uses."""
        return list(self.session.get_providers())

    @property
    def spins(self) -> bool:
        """Whether the session's idle intra-op threads spin (read back from its options)."""
        options = self.session.get_session_options()
        try:
            return str(options.get_session_config_entry(SPINNING_KEY)) != "0"
        except RuntimeError:  # never set: onnxruntime's default, spinning
            return True

    def run(
        self, windows: npt.NDArray[np.float32]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32] | None]:
        """Embed a batch of windows.

        Args:
            windows: float32 (batch, window_samples) mono audio at info.sample_rate.

        Returns:
            (embeddings float32 (batch, dim), logits float32 (batch, n_labels) or None).
        """
        refuse_head(self.path, self.info.kind)
        audio = np.ascontiguousarray(windows, dtype=np.float32)[:, None, :]
        names = GRAPH_IO[self.info.kind].outputs  # (embedding,) or (embedding, logits)
        if self.binding_device is None:
            results = self.session.run(list(names), {AUDIO: audio})
        else:
            results = self._run_bound(audio, names)
        return results[0], (results[1] if len(results) > 1 else None)

    def _run_bound(self, audio: npt.NDArray[np.float32], names: tuple[str, ...]) -> list[Any]:
        """session.run through an IO binding on `binding_device` (CUDA: one upload per batch)."""
        device = str(self.binding_device)
        binding = self.session.io_binding()
        value = self._ort.OrtValue.ortvalue_from_numpy(audio, device, 0)
        binding.bind_ortvalue_input(AUDIO, value)
        for name in names:
            binding.bind_output(name, device)
        self.session.run_with_iobinding(binding)
        return list(binding.copy_outputs_to_cpu())

    def run_head(self, embeddings: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Logits (batch, n_labels) of a head-only model for float32 (batch, dim) embeddings."""
        if self.info.kind != "head":
            raise ModelArtifactError(f"{self.path} is a {self.info.kind}, not a head-only model")
        feed = {HEAD_IO.inputs[0]: np.ascontiguousarray(embeddings, dtype=np.float32)}
        (logits,) = self.session.run(list(HEAD_IO.outputs), feed)
        return np.asarray(logits, np.float32)

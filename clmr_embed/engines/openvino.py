"""The OpenVINO engine: the same ONNX files on OpenVINO's CPU plugin, at fp32, bf16 or int8."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from clmr_embed.artifact import AUDIO, GRAPH_IO, ModelInfo, check_io, parse_metadata, refuse_head
from clmr_embed.digest import ModelFile
from clmr_embed.engines.engine import EngineConfig, Output
from clmr_embed.engines.variant import FLOAT_BLOCKS_KEY, check_variant, variant_path
from clmr_embed.errors import ConfigError, MissingDependencyError, ModelArtifactError
from clmr_embed.registry import cache_dir

PRECISIONS = ("fp32", "bf16", "int8")
# OpenVINO's float inference precision; an int8 file's float layers take bf16 where it runs.
HINTS = {"fp32": "f32", "bf16": "bf16"}
# Windows per infer request: 0 splits a batch into one chunk per stream; n > 0 cuts chunks of
# n that the streams take as they free up (a stream slowed by a decoder takes fewer). 2: e2e
# +11 % int8, +8 % bf16 over one chunk per stream on 2 cores with a decode worker, and less
# memory (bench/extract.py, docs/performance.md).
CHUNK_WINDOWS = 2
PIN_THREADS: bool | None = None  # ENABLE_CPU_PINNING; None: OpenVINO's default (pinned)


def compile_cache() -> Path | None:
    """Where OpenVINO keeps compiled models (its CACHE_DIR), or None where it cannot be written.

    A warm cache skips most of the graph compile at every start: 0.30 -> 0.11 s on 2 cores for
    the bundled int8 file (docs/performance.md). OpenVINO keys each entry
    by the model, the properties and its own version, so a stale entry is never used.
    """
    folder = cache_dir() / "openvino"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # a read-only home: compile every time, as without a cache
    return folder


def import_openvino() -> Any:
    """Import openvino, or explain which extra installs it."""
    try:
        import openvino
    except ImportError:
        raise MissingDependencyError(
            "openvino is not installed; pip install 'clmr-embed[openvino]' for the bf16 and "
            "OpenVINO int8 paths"
        ) from None
    return openvino


def cpu_capabilities(core: Any) -> tuple[str, ...]:
    """What OpenVINO's CPU plugin says this CPU accelerates, e.g. ("BF16", "FP32", "INT8")."""
    return tuple(str(c) for c in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def _metadata(ov_model: Any) -> dict[str, str]:
    """The ONNX metadata_props that OpenVINO's ONNX reader keeps under rt_info["framework"]."""
    info = ov_model.get_rt_info()
    if "framework" not in info:
        return {}
    return {str(k): v.astype(str) for k, v in info["framework"].items()}


def _read(core: Any, path: Path) -> Any:
    try:
        return core.read_model(str(path))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1][:160]
        raise ModelArtifactError(
            f"{path} is not a model OpenVINO can read ({first}); pass a file written by "
            "`clmr-embed export`"
        ) from None


class OpenVinoEngine:
    """A model on OpenVINO's CPU plugin.

    Args:
        model: the fp32 encoder or tagger ONNX file (resolved and hashed once by the caller).
        precision: "fp32", "bf16" (OpenVINO's inference-precision hint on the fp32 file) or
            "int8" (the int8 file beside `model`, its float layers in bf16 where the CPU has it).
        config: threads (device must be "auto" or "cpu").

    `precision` afterwards says what runs: a bf16 request on a CPU without bf16 runs fp32
    (OpenVINO falls back silently; this class does not).
    """

    engine = "openvino"

    def __init__(
        self, model: ModelFile, precision: str = "fp32", config: EngineConfig | None = None
    ):
        config = config or EngineConfig()
        if precision not in PRECISIONS or config.device == "cuda":
            raise ConfigError(
                f"OpenVINO runs {list(PRECISIONS)} on the CPU; got precision {precision!r} on "
                f"device {config.device!r}"
            )
        ov = import_openvino()
        core = ov.Core()
        self.version = self.library_version()
        self.sha256 = model.sha256
        self.path = variant_path(model.path, "int8" if precision == "int8" else "fp32")
        ov_model = _read(core, self.path)
        metadata = _metadata(ov_model)
        check_variant(model.path, "int8" if precision == "int8" else "fp32", self.sha256, metadata)
        self.info: ModelInfo = parse_metadata(metadata, self.path)
        refuse_head(self.path, self.info.kind)
        self._outputs = list(GRAPH_IO[self.info.kind].outputs)
        names = [n for o in ov_model.outputs for n in o.get_names()]
        check_io(self.path, self.info.kind, [i.get_any_name() for i in ov_model.inputs], names)
        wanted = "bf16" if precision != "fp32" and "BF16" in cpu_capabilities(core) else "fp32"
        properties: dict[str, Any] = {
            "INFERENCE_PRECISION_HINT": HINTS[wanted],
            # Streams of one or a few threads, each running part of a batch, beat one request
            # over all threads (~1.1-1.8x measured on 2 cores): less synchronisation per conv.
            "PERFORMANCE_HINT": "THROUGHPUT",
        }
        if config.threads > 0:
            properties["INFERENCE_NUM_THREADS"] = config.threads
        if PIN_THREADS is not None:
            properties["ENABLE_CPU_PINNING"] = PIN_THREADS
        cache = compile_cache()
        if cache is not None:
            properties["CACHE_DIR"] = str(cache)
        compiled = core.compile_model(ov_model, "CPU", properties)
        hint = compiled.get_property("INFERENCE_PRECISION_HINT")
        ran = "bf16" if hint == ov.Type.bf16 else "fp32"
        self.precision = "int8" if precision == "int8" else ran
        self.detail = _detail(self.precision, ran, metadata.get(FLOAT_BLOCKS_KEY, ""))
        self.streams = int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        self._queue = ov.AsyncInferQueue(compiled, self.streams)
        self._queue.set_callback(self._collect)
        self._parts: dict[int, list[npt.NDArray[np.float32]]] = {}
        self._lock = threading.Lock()  # one batch at a time goes through the queue

    def _collect(self, request: Any, index: int) -> None:
        # A request reuses its output buffers on its next run: copy them out.
        self._parts[index] = [np.array(request.get_tensor(n).data) for n in self._outputs]

    @staticmethod
    def library_version() -> str:
        """The installed OpenVINO's version."""
        return str(import_openvino().get_version())

    def run(self, windows: npt.NDArray[np.float32]) -> Output:
        """(embeddings, logits or None) of float32 (batch, window) audio, the batch split
        over the engine's streams."""
        audio = np.ascontiguousarray(windows, dtype=np.float32)[:, None, :]
        parts = -(-len(audio) // CHUNK_WINDOWS) if CHUNK_WINDOWS > 0 else self.streams
        chunks = np.array_split(audio, max(1, min(parts, len(audio))))
        with self._lock:
            self._parts = {}
            for index, chunk in enumerate(chunks):
                self._queue.start_async({AUDIO: chunk}, index)
            self._queue.wait_all()
            outputs = [
                np.concatenate([self._parts[i][k] for i in range(len(chunks))]).astype(np.float32)
                for k in range(len(self._outputs))
            ]
        return outputs[0], (outputs[1] if len(outputs) > 1 else None)


def _detail(precision: str, float_precision: str, float_blocks: str) -> str:
    if precision != "int8":
        return f"{precision} on OpenVINO CPU"
    where = f"float blocks {float_blocks}" if float_blocks else "float layers"
    return f"int8 on OpenVINO CPU, {where} in {float_precision}"

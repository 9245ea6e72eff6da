"""Static int8 quantization of a clmr-embed ONNX file: QDQ, per-channel weights, real calibration.

Activations are calibrated on real music (export.calibration). int8 everywhere costs too much
on SampleCNN's first blocks, which see the raw signal at full length: quiet windows fall onto a
few quantization steps. So the leading blocks stay in float, as few as reach MIN_COSINE to fp32
on held-aside windows of the calibration folder; the tagger head stays in float too.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from clmr_embed.artifact import EMBEDDING, parse_metadata
from clmr_embed.atomic import atomic_path
from clmr_embed.digest import file_sha256
from clmr_embed.engines.gate import MIN_COSINE, window_cosines
from clmr_embed.engines.variant import FLOAT_BLOCKS_KEY, PRECISION_KEY, SOURCE_KEY, int8_path
from clmr_embed.errors import ConfigError, ModelArtifactError
from clmr_embed.model import OnnxModel, SessionConfig
from export.calibration import CalibrationConfig, CalibrationSet, WindowReader, Windows
from export.calibration import calibration_set as read_calibration_set

METHODS = {
    "minmax": CalibrationMethod.MinMax,  # the whole range seen: no clipping, coarse steps
    "percentile": CalibrationMethod.Percentile,  # clips the rarest activations (`percentile`)
    "entropy": CalibrationMethod.Entropy,  # the range keeping the histogram's KL lowest
}
ACTIVATIONS = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}
# Weights are named as clmr_embed.official.graph names them: block i's conv is
# encoder.sequential.i.0 (encoder-only files of earlier versions: sequential.i.0 at the top).
BLOCK_WEIGHTS = ("encoder.sequential.{}.0.weight", "sequential.{}.0.weight")
HEAD_OPS = ("Gemm", "MatMul")  # the tagger head's linear layers, after the embedding
RUN_BATCH = 16  # windows per onnxruntime run when checking a candidate


@dataclass(frozen=True)
class QuantizeConfig:
    """How the int8 file is made."""

    calibration: CalibrationConfig  # the calibration audio
    # SampleCNN blocks left in float; None: the fewest leading blocks that reach MIN_COSINE
    float_blocks: tuple[int, ...] | None = None
    method: str = "percentile"  # a key of METHODS; minmax's full range loses quiet windows
    percentile: float = 99.999  # for "percentile": the share of activation magnitudes kept
    activations: str = "uint8"  # a key of ACTIVATIONS: uint8 suits x86 VNNI's u8*s8 kernels
    # Calibration ranges JSON, written once and then read instead of calibrating: valid for one
    # source file, calibration set and method only (benchmarks sweeping float blocks).
    ranges_cache: Path | None = None


@dataclass(frozen=True)
class QuantizeReport:
    """What `quantize_model` wrote and measured."""

    path: Path  # the int8 file
    float_blocks: tuple[int, ...]  # blocks it keeps in float
    check_cosine: dict[str, float]  # min centred cosine on the check windows per float-block set
    calibration_windows: int  # windows the ranges were calibrated on
    files: tuple[Path, ...]  # calibration and check files read


def block_convs(model: onnx.ModelProto) -> dict[int, str]:
    """SampleCNN block index -> the name of its Conv node."""
    by_weight = {n.input[1]: n.name for n in model.graph.node if n.op_type == "Conv"}
    for pattern in BLOCK_WEIGHTS:
        blocks: dict[int, str] = {}
        while pattern.format(len(blocks)) in by_weight:
            blocks[len(blocks)] = by_weight[pattern.format(len(blocks))]
        if blocks:
            return blocks
    return {}


def float_nodes(model: onnx.ModelProto, blocks: Sequence[int]) -> list[str]:
    """Names of the nodes left in float: the convs of SampleCNN `blocks` and the tagger head."""
    convs = block_convs(model)
    missing = sorted(set(blocks) - set(convs))
    if missing:
        raise ModelArtifactError(
            f"the graph has no conv for SampleCNN blocks {missing} (weights named like "
            f"{BLOCK_WEIGHTS[0].format(0)!r}); it has blocks 0..{len(convs) - 1}"
        )
    return [convs[b] for b in blocks] + head_nodes(model)


def name_nodes(model: onnx.ModelProto) -> onnx.ModelProto:
    """Give every unnamed node a unique name (exclusions from quantization go by name)."""
    taken = {n.name for n in model.graph.node}
    for i, node in enumerate(model.graph.node):
        if not node.name:
            node.name = f"{node.op_type}_{i}"
            while node.name in taken:
                node.name += "_"
            taken.add(node.name)
    return model


def head_nodes(model: onnx.ModelProto) -> list[str]:
    """The linear layers downstream of the "embedding" tensor: the tagger head."""
    reached, names = {EMBEDDING}, []
    for node in model.graph.node:  # ONNX nodes are topologically sorted
        if reached.intersection(node.input):
            reached.update(node.output)
            if node.op_type in HEAD_OPS:
                names.append(node.name)
    return names


def _check(config: QuantizeConfig) -> None:
    if config.method not in METHODS or config.activations not in ACTIVATIONS:
        raise ConfigError(
            f"quantize method {config.method!r} / activations {config.activations!r}: "
            f"expected one of {sorted(METHODS)} / {sorted(ACTIVATIONS)}"
        )


def embeddings(path: Path, windows: Windows) -> np.ndarray:
    """Embeddings of `windows` by an ONNX file on onnxruntime's CPU provider."""
    model = OnnxModel(path, SessionConfig(device="cpu"))
    return np.concatenate(
        [model.run(windows[i : i + RUN_BATCH])[0] for i in range(0, len(windows), RUN_BATCH)]
    )


@dataclass(frozen=True)
class _Job:
    prepared: Path  # the pre-processed fp32 graph
    data: CalibrationSet  # calibration and check windows
    config: QuantizeConfig  # method and types
    ranges: Path  # the calibration ranges cache


def _quantize(job: _Job, blocks: Sequence[int], out: Path) -> None:
    quantize_static(
        str(job.prepared),
        str(out),
        WindowReader(job.data.windows),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=ACTIVATIONS[job.config.activations],
        weight_type=QuantType.QInt8,
        nodes_to_exclude=float_nodes(onnx.load(str(job.prepared)), blocks),
        calibrate_method=METHODS[job.config.method],
        calibration_cache_path=job.ranges,
        extra_options={"CalibStridedMinMax": 1, "CalibPercentile": job.config.percentile},
    )


def _search(
    job: _Job, out: Path, reference: np.ndarray
) -> tuple[tuple[int, ...], dict[str, float]]:
    """Quantize with 0, 1, 2, ... leading float blocks until the check windows pass."""
    chosen = job.config.float_blocks
    n_blocks = len(block_convs(onnx.load(str(job.prepared))))
    # Never every block: an int8 file without int8 convs would only be slower.
    tries = [chosen] if chosen is not None else [tuple(range(k)) for k in range(max(n_blocks, 1))]
    cosines: dict[str, float] = {}
    for blocks in tries:
        _quantize(job, blocks, out)
        found = float(window_cosines(embeddings(out, job.data.check), reference).min())
        cosines[",".join(map(str, blocks)) or "none"] = found
        if chosen is not None or found >= MIN_COSINE:
            return tuple(blocks), cosines
    raise ModelArtifactError(
        f"no int8 variant reaches a centred cosine of {MIN_COSINE} to fp32 on the check "
        f"windows (min cosine by float blocks: {cosines}); keep this model at fp32 or bf16"
    )


def _provenance(source: Path, blocks: Sequence[int], job: _Job) -> dict[str, str]:
    method = job.config.method
    return {
        PRECISION_KEY: "int8",
        SOURCE_KEY: file_sha256(source),
        FLOAT_BLOCKS_KEY: ",".join(str(b) for b in blocks),
        "clmr.calibration": f"{method} over {len(job.data.windows)} windows of "
        f"{len(job.data.files)} files in {job.config.calibration.directory.name}/",
    }


def quantize_model(
    source: Path, target: Path | None, config: QuantizeConfig, data: CalibrationSet | None = None
) -> QuantizeReport:
    """Write the static int8 (QDQ) version of the fp32 ONNX file `source`.

    Args:
        source: an fp32 encoder or tagger ONNX file written by `clmr-embed export`.
        target: the int8 file; None: int8_path(source) (X.onnx -> X.int8.onnx beside it).
        config: calibration audio, float blocks, calibration method.
        data: calibration and check windows already cut; None: read config.calibration.

    Returns:
        The report; the file has source's clmr.* metadata plus clmr.precision=int8, the sha256
        of source and the float blocks.
    """
    _check(config)
    fp32 = onnx.load(str(source))
    metadata = {p.key: p.value for p in fp32.metadata_props}
    info = parse_metadata(metadata, source)
    if info.kind == "head" or metadata.get(PRECISION_KEY, "fp32") != "fp32":
        raise ModelArtifactError(f"{source} is not an fp32 encoder or tagger; nothing to quantize")
    if data is None:
        data = read_calibration_set(config.calibration, info.sample_rate, info.window_samples)
    target = Path(target) if target is not None else int8_path(source)
    with tempfile.TemporaryDirectory() as tmp, atomic_path(target) as out:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        onnx.save(name_nodes(onnx.load(str(prepared))), str(prepared))
        job = _Job(prepared, data, config, config.ranges_cache or Path(tmp) / "ranges.json")
        blocks, cosines = _search(job, out, embeddings(Path(source), data.check))
        int8 = onnx.load(str(out))
        onnx.helper.set_model_props(int8, {**metadata, **_provenance(source, blocks, job)})
        onnx.save(int8, str(out))
    return QuantizeReport(target, blocks, cosines, len(data.windows), data.files)


def quantize_exports(files: Sequence[Path], calibration: Path) -> list[QuantizeReport]:
    """The int8 sibling (X.int8.onnx) of every fp32 encoder or tagger ONNX file among `files`
    (what `clmr-embed export --precision int8 --calibration DIR` writes after the export); the
    calibration audio is decoded once for all of them (one export: one rate and window)."""
    config = QuantizeConfig(CalibrationConfig(calibration))
    data: CalibrationSet | None = None
    reports = []
    for path in files:
        if path.suffix != ".onnx":
            continue
        props = onnx.load(str(path), load_external_data=False).metadata_props
        info = parse_metadata({p.key: p.value for p in props}, path)
        if info.kind == "head":
            continue
        if data is None:
            data = read_calibration_set(config.calibration, info.sample_rate, info.window_samples)
        reports.append(quantize_model(path, None, config, data))
    return reports

"""Static int8 quantization: calibration sets from real folders, QDQ files tied to their source."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from clmr_embed.digest import ModelFile, file_sha256
from clmr_embed.engines.gate import window_cosines
from clmr_embed.engines.onnxruntime import OnnxRuntimeEngine
from clmr_embed.engines.variant import FLOAT_BLOCKS_KEY, PRECISION_KEY, SOURCE_KEY, int8_path
from clmr_embed.errors import ConfigError, DataError, ModelArtifactError
from export.calibration import CalibrationConfig, WindowReader, calibration_files, calibration_set
from export.quantize import QuantizeConfig, float_nodes, head_nodes, name_nodes, quantize_model
from tests.fixtures.audio import write_audio

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "clmr_embed" / "models" / "clmr-free.onnx"
WINDOW = 2187  # the tiny models' window at 8 kHz


def _music(folder: Path, n: int, seconds: float = 2.0, rate: int = 8000) -> list[Path]:
    """n noise files, file i at amplitude (i + 1) / 100: a window tells which file it is from."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    return [
        write_audio(
            folder / f"{i:02d}.wav",
            np.clip(rng.standard_normal(int(seconds * rate)), -3, 3) * (i + 1) / 100,
            rate,
        )
        for i in range(n)
    ]


def _file_index(windows: np.ndarray) -> set[int]:
    """Which _music file each window came from (its std is (i + 1) / 100)."""
    return {round(float(w.std()) * 100) - 1 for w in windows}


def test_calibration_files_are_spread_and_exclusions_hold(tmp_path: Path) -> None:
    _music(tmp_path / "a", 8)
    _music(tmp_path / "held", 2)
    config = CalibrationConfig(tmp_path, windows=4, exclude=("held/*",))
    files = calibration_files(config)
    assert len(files) == 8 and all(f.parent.name == "a" for f in files)
    first = sorted(int(f.stem) for f in files[:3])
    assert max(np.diff(first)) > 1  # a prefix is not the first files of the folder
    with pytest.raises(ConfigError, match="must be > 0"):
        calibration_files(CalibrationConfig(tmp_path, windows=0))
    with pytest.raises(DataError, match="no audio files"):
        calibration_files(CalibrationConfig(tmp_path, exclude=("*",)))


def test_check_windows_come_from_other_files(tmp_path: Path) -> None:
    _music(tmp_path, 10)
    config = CalibrationConfig(tmp_path, windows=12, check_windows=6, per_file=3)
    data = calibration_set(config, 8000, WINDOW)
    assert data.windows.shape == (12, WINDOW) and data.check.shape == (6, WINDOW)
    assert data.windows.dtype == np.float32
    assert not _file_index(data.windows) & _file_index(data.check)
    assert len(data.files) == 6  # 4 files of 3 windows, then 2 for the check
    with pytest.raises(DataError, match="too little audio"):
        calibration_set(CalibrationConfig(tmp_path, windows=100, per_file=3), 8000, WINDOW)


def test_window_reader_serves_equal_batches_by_range() -> None:
    windows = np.arange(20 * 4, dtype=np.float32).reshape(20, 4)
    reader = WindowReader(windows, batch=8)
    assert len(reader) == 2  # the ragged tail of 4 is left out
    first = reader.get_next()
    assert first is not None and first["audio"].shape == (8, 1, 4)
    reader.set_range(1, 2)
    second = reader.get_next()
    assert second is not None and second["audio"][0, 0, 0] == windows[8, 0]
    assert reader.get_next() is None


def test_float_nodes_name_blocks_and_head() -> None:
    model = name_nodes(onnx.load(str(BUNDLED)))  # as quantize does: the builder names no node
    nodes = {n.name: n for n in model.graph.node}
    names = float_nodes(model, [0, 1])
    weights = [nodes[n].input[1] for n in names]
    assert weights == [
        "encoder.sequential.0.0.weight",
        "encoder.sequential.1.0.weight",
        "head.0.weight",
    ]
    with pytest.raises(ModelArtifactError, match=r"blocks \[11\].*0\.\.10"):
        float_nodes(model, [11])


def test_head_nodes_are_those_after_the_embedding(tiny_tagger: Path) -> None:
    model = name_nodes(onnx.load(str(tiny_tagger)))  # the tiny graph's nodes have no names
    assert len({n.name for n in model.graph.node}) == len(model.graph.node)
    (head,) = head_nodes(model)
    assert next(n for n in model.graph.node if n.name == head).input[0] == "embedding"


def test_quantized_tiny_tagger(tmp_path: Path, tiny_tagger: Path) -> None:
    source = tmp_path / "tiny.onnx"
    source.write_bytes(tiny_tagger.read_bytes())
    calibration = CalibrationConfig(_music(tmp_path / "music", 6)[0].parent, 16, 8, per_file=4)
    report = quantize_model(source, None, QuantizeConfig(calibration, float_blocks=()))
    assert report.path == int8_path(source) and report.float_blocks == ()
    assert report.calibration_windows == 16 and list(report.check_cosine) == ["none"]
    int8 = onnx.load(str(report.path))
    props = {p.key: p.value for p in int8.metadata_props}
    assert props[PRECISION_KEY] == "int8" and props[SOURCE_KEY] == file_sha256(source)
    assert props[FLOAT_BLOCKS_KEY] == "" and props["clmr.name"] == "tiny"
    ops = [n.op_type for n in int8.graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    (head,) = [n for n in int8.graph.node if "embedding" in n.input]
    assert head.op_type in ("MatMul", "Gemm") and head.input[1] == "w"  # float, not dequantized
    windows = np.random.default_rng(1).uniform(-0.05, 0.05, (32, WINDOW)).astype(np.float32)
    fp32, _ = OnnxRuntimeEngine(ModelFile.hashed(source)).run(windows)
    engine = OnnxRuntimeEngine(ModelFile.hashed(source), "int8")
    got, logits = engine.run(windows)
    assert engine.precision == "int8" and logits is not None
    assert 0.9 < window_cosines(got, fp32).min() < 1.0  # quantized, and still close


def test_only_fp32_models_are_quantized(tmp_path: Path, tiny_tagger: Path) -> None:
    source = tmp_path / "tiny.onnx"
    source.write_bytes(tiny_tagger.read_bytes())
    calibration = CalibrationConfig(_music(tmp_path / "music", 6)[0].parent, 16, 8, per_file=4)
    config = QuantizeConfig(calibration, float_blocks=())
    report = quantize_model(source, None, config)
    with pytest.raises(ModelArtifactError, match="not an fp32 encoder or tagger"):
        quantize_model(report.path, tmp_path / "twice.onnx", config)
    with pytest.raises(ConfigError, match="quantize method"):
        quantize_model(source, None, QuantizeConfig(calibration, method="kl"))


def test_shipped_int8_file_is_of_the_shipped_model() -> None:
    """tools.precision int8 rebuilds it whenever clmr-free.onnx changes."""
    props = {p.key: p.value for p in onnx.load(str(int8_path(BUNDLED))).metadata_props}
    assert props[SOURCE_KEY] == file_sha256(BUNDLED) and props[PRECISION_KEY] == "int8"

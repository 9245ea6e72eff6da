"""Start-up choice of SampleCNN's compute layout and its hook into pre-training."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

torch = pytest.importorskip("torch")

from clmr_embed.constants import SAMPLE_RATE
from clmr_embed.errors import ConfigError
from tests.fixtures.pretrain import TINY
from training.layout import choose_layout, cpu_flags, cpu_precision
from training.pretrain.config import load_pretrain_config
from training.pretrain.distributed import Processes
from training.pretrain.parts import build_parts
from training.pretrain.run import run_pretrain
from training.weights import load_checkpoint

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
SAPPHIRE_RAPIDS = frozenset({"avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "amx_int8"})
ZEN4 = frozenset({"avx512f", "avx512_bf16"})
ZEN2 = frozenset({"avx2", "fma"})  # AVX2 only: bf16 is emulated


def test_auto_picks_channels_last_only_for_bf16_on_an_amx_cpu() -> None:
    assert choose_layout("auto", CPU, "bf16", SAPPHIRE_RAPIDS) == "conv2d"
    assert choose_layout("auto", CPU, "bf16", ZEN4) == "conv1d"
    assert choose_layout("auto", CPU, "fp32", SAPPHIRE_RAPIDS) == "conv1d"
    assert choose_layout("auto", CUDA, "bf16", SAPPHIRE_RAPIDS) == "conv1d"
    assert choose_layout("conv2d", CPU, "fp32", ZEN4) == "conv2d"  # an explicit choice holds
    assert choose_layout("conv1d", CPU, "bf16", SAPPHIRE_RAPIDS) == "conv1d"


def test_bad_layouts_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="'conv3d'"):
        choose_layout("conv3d", CPU, "bf16", ZEN4)
    with pytest.raises(ConfigError, match="CPU layout"):
        choose_layout("conv2d", CUDA, "bf16", ZEN4)
    with pytest.raises(ConfigError, match="encoder_layout"):
        load_pretrain_config(None, {"encoder_layout": "fast"})


def test_cpu_flags_reads_the_flags_line(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx512_bf16 amx_tile\nbugs\t: none\n")
    assert cpu_flags(cpuinfo) == {"fpu", "avx512_bf16", "amx_tile"}
    assert cpu_flags(tmp_path / "missing") == frozenset()


@pytest.fixture(scope="module")
def tones(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tones")
    t = np.arange(round(3.5 * SAMPLE_RATE)) / SAMPLE_RATE
    for k, freq in enumerate((110.0, 440.0, 1700.0)):
        sf.write(
            folder / f"{k}.wav", (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), 22050
        )
    return folder


def test_pretraining_in_the_fast_layout_resumes_exactly(tones: Path, tmp_path: Path) -> None:
    base = dict(encoder_channels=TINY, batch_size=3, max_steps=3, log_every=1, threads=2,
                checkpoint_every=1, cache_dir=str(tmp_path / "c"), device="cpu",
                precision="bf16", encoder_layout="conv2d")  # fmt: skip
    config = load_pretrain_config(None, base)
    parts = build_parts(config, tmp_path / "x", False, Processes(0, 1, 0, CPU))
    assert parts.model.encoder.layout == "conv2d"  # the hook in build_parts
    straight = run_pretrain(config, [tones], tmp_path / "a", progress=False)
    cut = load_pretrain_config(None, base | {"stop_at_step": 2})
    run_pretrain(cut, [tones], tmp_path / "b", progress=False)
    resumed = run_pretrain(config, [tones], tmp_path / "b", resume=True, progress=False)
    a, b = load_checkpoint(straight.checkpoint), load_checkpoint(resumed.checkpoint)
    assert a.step == b.step == 3
    assert a.encoder_state is not None and b.encoder_state is not None
    for key, value in a.encoder_state.items():
        torch.testing.assert_close(b.encoder_state[key], value, rtol=0, atol=0, msg=key)
    assert resumed.final_loss == straight.final_loss


def test_bf16_falls_back_to_fp32_only_on_cpus_without_native_bf16() -> None:
    precision, why = cpu_precision("bf16", CPU, ZEN2)
    assert precision == "fp32" and why is not None and "no native bf16" in why
    assert cpu_precision("bf16", CPU, ZEN4) == ("bf16", None)
    assert cpu_precision("bf16", CPU, SAPPHIRE_RAPIDS) == ("bf16", None)
    assert cpu_precision("bf16", CUDA, ZEN2) == ("bf16", None)  # the GPU decides there
    assert cpu_precision("fp32", CPU, ZEN2) == ("fp32", None)
    assert cpu_precision("bf16", CPU, frozenset()) == ("bf16", None)  # unreadable: trust it


@pytest.mark.skipif(
    not cpu_flags() or bool(cpu_flags() & {"avx512_bf16", "amx_bf16"}),
    reason="needs a CPU without native bf16 (this one has it, or its flags are unreadable)",
)
def test_a_bf16_run_on_such_a_cpu_warns_and_records_fp32(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    sf.write(tmp_path / "a.wav", rng.standard_normal(8 * SAMPLE_RATE).astype(np.float32) * 0.1,
             SAMPLE_RATE)  # fmt: skip
    settings = dict(encoder_channels=TINY, batch_size=2, max_steps=1, precision="bf16",
                    device="cpu", segment_seconds=3.0, cache_dir=str(tmp_path))  # fmt: skip
    config = load_pretrain_config(None, settings)
    with pytest.warns(UserWarning, match="training in fp32"):
        run_pretrain(config, [tmp_path / "a.wav"], tmp_path / "run", progress=False)
    ckpt = load_checkpoint(tmp_path / "run" / "latest.pt")
    assert ckpt.train_config["precision"] == "fp32"

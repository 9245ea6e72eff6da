"""`train pretrain --device cuda` on generated audio: bf16 autocast steps on a GPU (gpu-marked)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

torch = pytest.importorskip("torch")

from clmr_embed.cli import app
from tests.training.pretrain.test_cli import CONFIG, _music
from training.weights import load_checkpoint

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_a_cuda_run_trains_and_checkpoints(tmp_path: Path, precision: str) -> None:
    music = _music(tmp_path / "music")
    config = tmp_path / "gpu.toml"
    config.write_text(CONFIG.replace('device = "cpu"', 'device = "cuda"'))
    run = tmp_path / "run"
    args = ["train", "pretrain", str(music), "--output-dir", str(run), "--config", str(config)]
    result = CliRunner().invoke(app, [*args, "--precision", precision, "--max-steps", "4"])
    assert result.exit_code == 0, result.output
    ckpt = load_checkpoint(run / "latest.pt")
    assert ckpt.step == 4
    assert ckpt.encoder_state is not None
    weights = torch.cat([v.float().flatten() for v in ckpt.encoder_state.values()])
    assert bool(torch.isfinite(weights).all())
    losses = [line for line in (run / "metrics.jsonl").read_text().splitlines() if '"loss"' in line]
    assert losses and all(
        math.isfinite(float(x.split('"loss": ')[1].split(",")[0])) for x in losses
    )

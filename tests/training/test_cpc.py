"""CLMR v1's CPC: encoder shapes, InfoNCE's scoring and masking, a short run whose loss falls."""

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from clmr_embed.constants import WINDOW_SAMPLES
from clmr_embed.errors import ConfigError
from training.config import CPCConfig
from training.cpc import CPC, CPCEncoder, info_nce
from training.pretrain.config import load_pretrain_config
from training.pretrain.run import run_pretrain
from training.weights import load_checkpoint

SMALL = CPCConfig(hidden_dim=16, context_dim=12, prediction_steps=3)


def test_encoder_gives_the_time_mean_of_the_context():
    encoder = CPCEncoder(SMALL).eval()
    x = torch.randn(2, 1, WINDOW_SAMPLES)
    z, c = encoder.encode(x)
    assert z.shape == (2, SMALL.frames, 16) and c.shape == (2, SMALL.frames, 12)
    torch.testing.assert_close(encoder(x), c.mean(dim=1))
    assert SMALL.embedding_dim == 12


def test_predictors_are_one_per_step_and_live_in_the_projector():
    model = CPC(CPCEncoder(SMALL))
    z, predictions = model(torch.randn(2, 1, WINDOW_SAMPLES))
    assert predictions.shape == (3, 2, SMALL.frames, 16)
    assert len(model.projector) == 3 and model.distill is None


def test_a_window_too_short_for_the_prediction_steps_is_a_config_error():
    with pytest.raises(ConfigError, match="prediction_steps"):
        CPCConfig(prediction_steps=12, window_samples=400)


def _reference(z, predictions, pool, picked):
    """InfoNCE anchor by anchor: positive first, then every drawn row that is not the positive."""
    batch, frames, _ = z.shape
    losses = []
    for k in range(1, predictions.shape[0] + 1):
        terms = []
        for b in range(batch):
            for t in range(frames - k):
                anchor = predictions[k - 1, b, t]
                own = b * frames + t + k
                rows = [int(r) for r in picked[k - 1] if int(r) != own]
                scores = torch.stack([anchor @ z[b, t + k]] + [anchor @ pool[r] for r in rows])
                terms.append(-torch.log_softmax(scores, 0)[0])
        losses.append(torch.stack(terms).mean())
    return torch.stack(losses).mean()


def test_info_nce_matches_the_anchor_by_anchor_definition():
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(2, 6, 4, generator=gen)
    predictions = torch.randn(2, 2, 6, 4, generator=gen)
    pool = z.reshape(-1, 4)
    # rows 2 and 3 are positives of some anchors: they must be masked for those anchors only
    picked = torch.tensor([[0, 2, 3, 7, 11], [1, 2, 3, 8, 9]])
    expected = _reference(z, predictions, pool, picked)
    torch.testing.assert_close(info_nce(z, predictions, pool, picked), expected)


def test_info_nce_is_low_when_predictions_point_at_their_positives():
    gen = torch.Generator().manual_seed(1)
    z = torch.nn.functional.normalize(torch.randn(4, 10, 32, generator=gen), dim=2)
    picked = torch.randint(40, (2, 16), generator=gen)
    aligned = torch.stack([torch.roll(z, -k, dims=1) for k in (1, 2)]) * 20
    noise = torch.randn(2, 4, 10, 32, generator=gen)
    assert info_nce(z, aligned, z.reshape(-1, 32), picked) < 0.05
    assert info_nce(z, noise, z.reshape(-1, 32), picked) > 1.0


@pytest.mark.slow  # pre-training runs
def test_a_short_cpc_run_lowers_info_nce_and_saves_a_cpc_checkpoint(sines, tmp_path):
    settings = dict(method="cpc", cpc_hidden_dim=16, cpc_context_dim=12, cpc_prediction_steps=3,
                    cpc_negatives=32, batch_size=4, max_steps=25, log_every=1, threads=2,
                    lr=1e-2, schedule="constant", checkpoint_every=100, device="cpu",
                    cache_dir=str(tmp_path / "cache"))  # fmt: skip
    result = run_pretrain(load_pretrain_config(None, settings), [sines], tmp_path / "run",
                          progress=False)  # fmt: skip
    rows = [
        json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    losses = [row["loss"] for row in rows]  # InfoNCE (no teacher term to split off)
    assert len(losses) == 25 and all(math.isfinite(x) for x in losses)
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.3, losses
    ckpt = load_checkpoint(result.checkpoint)
    assert ckpt.architecture == "cpc" and ckpt.encoder_config is None
    assert ckpt.cpc_config == SMALL and ckpt.method == "cpc"
    encoder = CPCEncoder(ckpt.cpc_config)
    assert ckpt.encoder_state is not None
    encoder.load_state_dict(ckpt.encoder_state, strict=True)

"""The anchor term: a frozen starting encoder that distillation alone stays near."""

import json

import numpy as np
import pytest
import soundfile as sf

torch = pytest.importorskip("torch")

from torch import Tensor

from clmr_embed.errors import ConfigError
from tests.fixtures.pretrain import RECIPE, ROOT, TINY, tiny_run
from training.config import EncoderConfig, config_to_dict
from training.pretrain.anchor import Anchor, anchor_loss
from training.pretrain.config import load_pretrain_config, resume_conflicts
from training.pretrain.run import run_pretrain
from training.samplecnn import SampleCNN
from training.weights import load_checkpoint

WEIGHTS = ROOT.parent / "shared" / "weights"
needs_teacher = pytest.mark.skipif(
    not (WEIGHTS / "musicnn_mtt.onnx").is_file(), reason="needs ../shared/weights"
)


def test_anchor_loss_is_zero_when_nothing_moved_and_relative_to_the_batch_spread():
    anchored = torch.randn(16, 8, generator=torch.Generator().manual_seed(0))
    assert anchor_loss(anchored, anchored).item() == 0.0
    at_the_mean = anchored.mean(dim=0, keepdim=True).expand_as(anchored)
    assert anchor_loss(at_the_mean, anchored).item() == pytest.approx(1.0, rel=1e-5)
    moved = anchored + 0.1 * torch.randn(16, 8, generator=torch.Generator().manual_seed(1))
    assert anchor_loss(3 * moved, 3 * anchored).item() == pytest.approx(
        anchor_loss(moved, anchored).item(), rel=1e-5
    )  # scale-free


def test_the_anchor_agrees_with_its_encoder_in_training_and_never_changes():
    torch.manual_seed(0)
    student = SampleCNN(EncoderConfig(channels=tuple(TINY))).train()
    copy = SampleCNN(EncoderConfig(channels=tuple(TINY)))
    copy.load_state_dict(student.state_dict())
    anchor = Anchor(copy)
    before = {k: v.clone() for k, v in copy.state_dict().items() if "num_batches" not in k}
    x = torch.randn(4, 1, 59049)
    assert torch.allclose(anchor(x), student(x), atol=1e-6)  # batch statistics, like the student
    assert not anchor(x).requires_grad
    after = copy.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items())  # running stats kept


def test_anchor_weight_needs_init_weights_and_distillation_alone_and_a_fixed_anchor():
    with pytest.raises(ConfigError, match="init_weights"):
        load_pretrain_config(RECIPE, {"anchor_weight": 1.0})
    with pytest.raises(ConfigError, match="anchor_weight"):
        load_pretrain_config(None, {"anchor_weight": 1.0, "init_weights": "a.pt"})
    with pytest.raises(ConfigError, match=">= 0"):
        load_pretrain_config(RECIPE, {"anchor_weight": -1.0, "init_weights": "a.pt"})
    anchored = load_pretrain_config(RECIPE, {"anchor_weight": 1.0, "init_weights": "a.pt"})
    saved = config_to_dict(anchored)
    other = load_pretrain_config(RECIPE, {"anchor_weight": 1.0, "init_weights": "b.pt"})
    assert resume_conflicts(saved, other, 1) == ["init_weights (the anchor of anchor_weight)"]
    plain = load_pretrain_config(RECIPE, {"init_weights": "b.pt"})
    assert resume_conflicts(config_to_dict(plain), plain, 1) == []


def _drift(start: dict | None, end: dict | None, x: Tensor) -> float:
    """anchor_loss of the `end` encoder's embeddings of `x` against the `start` encoder's."""
    encoders = []
    for state in (start, end):
        assert state is not None
        encoder = SampleCNN(EncoderConfig(channels=tuple(TINY)))
        encoder.load_state_dict(state)
        encoders.append(encoder.train())  # batch statistics, as in training and the anchor
    with torch.no_grad():
        return anchor_loss(encoders[1](x), encoders[0](x)).item()


@pytest.mark.slow
@needs_teacher
def test_the_anchor_term_is_logged_and_keeps_the_embeddings_nearer_the_start(demo_corpus, tmp_path):
    folder, root, _, _ = demo_corpus
    tiny = tiny_run(
        batch_size=8, max_steps=30, warmup_steps=0, lr=3e-3, log_every=10, cache_dir=str(root),
        teacher=str(WEIGHTS), teacher_workers=1,
    )  # fmt: skip
    start = tmp_path / "start"
    run_pretrain(load_pretrain_config(RECIPE, {**tiny, "stop_at_step": 1}), [folder], start,
                 progress=False)  # fmt: skip
    init = str(start / "latest.pt")
    loaded = load_checkpoint(start / "latest.pt").encoder_state
    x = torch.from_numpy(
        np.stack(
            [sf.read(f, frames=59049, dtype="float32")[0] for f in sorted(folder.glob("*.wav"))]
        )
    )[:, None]
    drift = {}
    for weight in (0.0, 10.0):
        config = load_pretrain_config(
            RECIPE, {**tiny, "init_weights": init, "anchor_weight": weight}
        )
        run = tmp_path / f"anchor-{weight:g}"
        run_pretrain(config, [folder], run, progress=False)
        drift[weight] = _drift(loaded, load_checkpoint(run / "latest.pt").encoder_state, x)
        rows = [json.loads(line) for line in (run / "metrics.jsonl").open()]
        training = [r for r in rows if "loss" in r]
        if weight:
            assert training[0]["anchor"] < 0.05  # the first step starts at the anchor
            for r in training:
                assert r["loss"] == pytest.approx(r["teacher"] + weight * r["anchor"], rel=1e-5)
        else:
            assert not any("anchor" in r for r in training)
    assert drift[10.0] < 0.7 * drift[0.0]  # measured 0.61 vs 1.17

"""WiSE-FT interpolation: the ends are the inputs, the middle is their mean, the file loads."""

import pytest

pytest.importorskip("torch")

import torch

from clmr_embed.errors import CheckpointError
from tests.fixtures.pretrain import TINY
from tools.interpolate import interpolate, main, out_path
from training.checkpoint import Checkpoint, save_checkpoint
from training.config import EncoderConfig
from training.samplecnn import SampleCNN
from training.weights import load_checkpoint

CONFIG = EncoderConfig(channels=tuple(TINY))


def _checkpoint(seed: int) -> Checkpoint:
    torch.manual_seed(seed)
    model = SampleCNN(CONFIG)
    with torch.no_grad():  # every tensor differs between the two ends, BatchNorm's too
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for name, tensor in state.items():
        if name.endswith("running_mean"):
            tensor.normal_()
        elif name.endswith("running_var"):
            tensor.uniform_(0.5, 2.0)
        elif name.endswith("num_batches_tracked"):
            tensor.fill_(seed)
    return Checkpoint(encoder_config=CONFIG, encoder_state=state, step=seed, source=f"s{seed}")


def test_ends_are_the_inputs_and_the_middle_is_the_mean():
    start, finetuned = _checkpoint(1), _checkpoint(2)
    at_start = interpolate(start, finetuned, 0.0).encoder_state
    at_end = interpolate(start, finetuned, 1.0).encoder_state
    middle = interpolate(start, finetuned, 0.5).encoder_state
    before, after = start.encoder_state, finetuned.encoder_state
    assert at_start and at_end and middle and before and after
    for name, end in after.items():
        begin = before[name]
        if end.is_floating_point():
            assert torch.equal(at_start[name], begin) and torch.equal(at_end[name], end)
            assert torch.allclose(middle[name], (begin + end) / 2, atol=1e-6)
            assert not torch.equal(begin, end)  # the test would not see a swapped end otherwise
        else:
            assert torch.equal(middle[name], end)  # counters come from the fine-tuned end


def test_the_written_checkpoint_loads_and_says_where_it_came_from(tmp_path):
    save_checkpoint(tmp_path / "a.pt", _checkpoint(1))
    save_checkpoint(tmp_path / "b.pt", _checkpoint(2))
    assert (
        main(
            [
                str(tmp_path / "a.pt"),
                str(tmp_path / "b.pt"),
                "--alpha",
                "0.3",
                "--out-dir",
                str(tmp_path / "mix"),
            ]
        )
        == 0
    )
    mixed = load_checkpoint(out_path(tmp_path / "mix", 0.3))
    assert mixed.extra["interpolated"]["alpha"] == 0.3 and "s1" in mixed.source
    assert mixed.encoder_state is not None
    SampleCNN(CONFIG).load_state_dict(mixed.encoder_state)
    assert mixed.optimizer_state is None and mixed.head_state is None


def test_encoders_of_different_shapes_are_refused():
    other = Checkpoint(
        encoder_config=EncoderConfig(), encoder_state=SampleCNN(EncoderConfig()).state_dict()
    )
    with pytest.raises(CheckpointError, match="shape"):
        interpolate(other, _checkpoint(2), 0.5)
    with pytest.raises(CheckpointError, match="outside"):
        interpolate(_checkpoint(1), _checkpoint(2), 1.5)

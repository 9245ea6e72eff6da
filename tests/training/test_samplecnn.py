"""SampleCNN's channels-last 2-D layout: the same function, gradients and state dict as Conv1d."""

import copy
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from torch import Tensor

from training.checkpoint import Checkpoint, save_checkpoint
from training.config import EncoderConfig
from training.samplecnn import SampleCNN
from training.weights import load_checkpoint

TINY = EncoderConfig(channels=(8, 8, 8, 16, 16, 16, 16, 16, 16, 32, 32))


def close(got: Tensor | None, want: Tensor | None, name: str = "output") -> None:
    """Equal to 1e-4 of the reference's scale: fp32 sums in another order differ in the ulps,
    and eleven training-mode BatchNorms amplify that (beyond 1e-5 on CI's CPU); a wrong layout
    differs by O(1)."""
    assert got is not None and want is not None
    scale = float(want.detach().abs().max())
    torch.testing.assert_close(
        got, want, rtol=1e-4, atol=1e-4 * scale, msg=lambda m: f"{name}: {m}"
    )


def pair() -> tuple[SampleCNN, SampleCNN]:
    torch.manual_seed(0)
    plain = SampleCNN(TINY)
    fast = copy.deepcopy(plain)
    fast.layout = "conv2d"
    return plain, fast


def test_conv2d_layout_equals_conv1d_in_fp32_outputs_gradients_and_buffers() -> None:
    plain, fast = pair()
    audio = torch.randn(4, 1, TINY.window_samples)
    want, got = plain(audio), fast(audio)
    close(got, want)
    weights = torch.linspace(-1, 1, want.numel()).reshape(want.shape)
    (want * weights).sum().backward()
    (got * weights).sum().backward()
    largest = max(float(p.grad.abs().max()) for p in plain.parameters() if p.grad is not None)
    for (name, p), q in zip(plain.named_parameters(), fast.parameters(), strict=True):
        if name.endswith(".0.bias"):
            # A conv bias before BatchNorm has a zero gradient: both hold only rounding noise.
            torch.testing.assert_close(q.grad, p.grad, rtol=0, atol=1e-4 * largest, msg=name)
        else:
            close(q.grad, p.grad, name)
    fast_state = fast.state_dict()
    for name, buffer in plain.state_dict().items():
        other = fast_state[name]
        close(other.double(), buffer.double(), name)  # running stats, num_batches_tracked
    assert int(fast.state_dict()["sequential.3.1.num_batches_tracked"]) == 1
    plain.eval(), fast.eval()
    close(fast(audio), plain(audio))


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_conv2d_layout_under_bf16_autocast_is_as_close_to_fp32_as_conv1d(mode: str) -> None:
    plain, fast = pair()
    plain.train(mode == "train"), fast.train(mode == "train")
    audio = torch.randn(8, 1, TINY.window_samples)
    with torch.no_grad():
        reference = plain(audio)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            want, got = plain(audio), fast(audio)
    assert got.dtype == want.dtype == torch.bfloat16

    def error(out: Tensor) -> float:
        return float((out.float() - reference).abs().max() / reference.abs().max())

    # bf16 keeps ~3 digits per layer; batch statistics of 8 examples amplify that in training.
    assert error(got) <= 1.5 * error(want) + 0.01


def test_state_dict_keeps_the_official_keys_and_shapes() -> None:
    plain, fast = pair()
    state, fast_state = plain.state_dict(), fast.state_dict()
    assert list(fast_state) == list(state)
    assert {k: v.shape for k, v in fast_state.items()} == {k: v.shape for k, v in state.items()}
    assert all(k.startswith("sequential.") and k.split(".")[2] in "01" for k in state)
    assert fast_state["sequential.0.0.weight"].shape == (8, 1, 3)
    assert fast_state["sequential.10.0.weight"].shape == (32, 32, 3)


def test_a_checkpoint_trained_in_the_fast_form_loads_strictly_into_plain_samplecnn(
    tmp_path: Path,
) -> None:
    _, fast = pair()
    optimizer = torch.optim.Adam(fast.parameters(), lr=1e-3)
    audio = torch.randn(4, 1, TINY.window_samples)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = fast(audio).float().pow(2).mean()
    loss.backward()
    optimizer.step()
    path = tmp_path / "fast.pt"
    save_checkpoint(path, Checkpoint(encoder_config=TINY, encoder_state=fast.state_dict()))
    loaded = load_checkpoint(path)
    assert loaded.encoder_state is not None
    plain = SampleCNN(loaded.encoder_config)
    plain.load_state_dict(loaded.encoder_state, strict=True)
    plain.eval(), fast.eval()
    close(fast(audio), plain(audio))

"""training.pretrain.augment: each transform's effect, shapes/dtypes, and the seeded chain."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("torch")
import torch

from clmr_embed.errors import ConfigError
from training.pretrain import augment as A
from training.pretrain import reverb as R
from training.pretrain.config import AugmentConfig

SR = 22050
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _noise(b: int = 2, t: int = SR, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 1, t, generator=g) * 0.1


def _band_db(y: torch.Tensor, x: torch.Tensor, lo_hz: float, hi_hz: float) -> torch.Tensor:
    """Per-example power change (dB) of y relative to x in [lo_hz, hi_hz)."""
    freqs = torch.fft.rfftfreq(x.shape[-1], 1 / SR)
    band = (freqs >= lo_hz) & (freqs < hi_hz)
    power = [torch.fft.rfft(s[:, 0].double()).abs().pow(2)[:, band].sum(-1) for s in (y, x)]
    return 10 * torch.log10(power[0] / power[1])


def _peak_hz(y: torch.Tensor) -> torch.Tensor:
    t = y.shape[-1]
    spec = torch.fft.rfft(y[:, 0].double() * torch.hann_window(t, dtype=torch.float64)).abs()
    return spec.argmax(-1).double() * SR / t


def _reverb(x: torch.Tensor, params: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    return R.reverb(x, params, SR, R.impulse_noise(params, x.shape[-1], SR, g))


def _transforms(b: int, g: torch.Generator) -> dict:
    return {
        "polarity": lambda x: A.polarity(x, torch.tensor([True, False])[:b]),
        "noise": lambda x: A.add_noise(
            x, torch.full((b,), 1e-2), torch.randn(x.shape, generator=g, device=g.device)
        ),
        "gain": lambda x: A.gain(x, torch.full((b,), -6.0)),
        "lowpass": lambda x: A.lowpass_fir(x, torch.tensor([2200.0, 4000.0])[:b], SR),
        "highpass": lambda x: A.highpass_fir(x, 700.0, SR),
        "delay": lambda x: A.delay(x, torch.tensor([4410, 9922])[:b]),
        "pitch": lambda x: A.pitch_shift(x, torch.tensor([-700, 350])[:b], SR),
        "reverb": lambda x: _reverb(x, torch.tensor([[50, 50, 50], [100, 0, 100]])[:b], g),
        "chain": lambda x: A.AugmentChain(AugmentConfig(), SR)(x, g),
    }


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_every_transform_keeps_shape_dtype_device(dtype: torch.dtype, device: str) -> None:
    x = _noise(2, 8192).to(device, dtype)
    g = torch.Generator(device=device).manual_seed(0)
    for name, fn in _transforms(2, g).items():
        y = fn(x)
        assert (y.shape, y.dtype, y.device) == (x.shape, dtype, x.device), name
        assert torch.isfinite(y).all(), name


def test_lowpass_removes_energy_above_cutoff() -> None:
    x = _noise()
    y = A.lowpass_fir(x, torch.tensor([2200.0, 4000.0]), SR)
    assert (_band_db(y[:1], x[:1], 2700, SR / 2) < -20).all()
    assert (_band_db(y[1:], x[1:], 4500, SR / 2) < -20).all()
    assert _band_db(y, x, 50, 1500).abs().max() < 0.5  # pass band untouched


def test_highpass_removes_energy_below_cutoff() -> None:
    x = _noise()
    y = A.highpass_fir(x, torch.tensor([1200.0, 700.0]), SR)
    assert (_band_db(y[:1], x[:1], 20, 700) < -20).all()
    assert (_band_db(y[1:], x[1:], 20, 200) < -20).all()
    assert _band_db(y, x, 2000, 10000).abs().max() < 0.5


def test_sinc_kernels_follow_julius_sizes() -> None:
    kernels = A.sinc_lowpass_kernels(torch.tensor([200.0, 4000.0]), SR)
    half_200 = int(8 / (200 / SR) / 2)  # julius: int(zeros / cutoff / 2)
    assert kernels.shape == (2, 2 * half_200 + 1)
    assert torch.allclose(kernels.sum(-1), torch.ones(2, dtype=torch.float64))
    half_4000 = int(8 / (4000 / SR) / 2)
    assert (kernels[1, : half_200 - half_4000] == 0).all() and kernels[1, half_200] > 0


@pytest.mark.parametrize("cents", [-700, -250, 300, 700])
def test_pitch_shift_moves_sine_by_ratio_and_keeps_length(cents: int) -> None:
    t = torch.arange(SR) / SR
    x = torch.stack([0.5 * torch.sin(2 * math.pi * f * t) for f in (440.0, 1000.0)])[:, None]
    y = A.pitch_shift(x, float(cents), SR)
    assert y.shape == x.shape
    ratio = _peak_hz(y) / torch.tensor([440.0, 1000.0], dtype=torch.float64)
    expected = torch.full((2,), 2 ** (cents / 1200), dtype=torch.float64)
    assert torch.allclose(ratio, expected, rtol=0.02)


def test_pitch_shift_by_zero_is_identity() -> None:
    x = _noise(1, 8192)
    assert torch.allclose(A.pitch_shift(x, 0.0, SR), x, atol=1e-5)
    assert torch.allclose(A.pitch_shift(x.double(), 0.0, SR), x.double(), atol=1e-12)


def test_polarity_negates_only_masked_examples() -> None:
    x = _noise(3, 64)
    y = A.polarity(x, torch.tensor([True, False, True]))
    assert torch.equal(y[0], -x[0]) and torch.equal(y[1], x[1]) and torch.equal(y[2], -x[2])


def test_noise_std_is_ratio_of_signal_std() -> None:
    x = _noise(2, SR)
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(3))
    y = A.add_noise(x, torch.tensor([1e-2, 1e-4]), noise)
    ratio = (y - x).std(dim=(1, 2)) / x.std(dim=(1, 2))
    assert torch.allclose(ratio, torch.tensor([1e-2, 1e-4]), rtol=0.05)


def test_gain_attenuates_in_db_and_clamps() -> None:
    x = _noise(2, 1000)
    y = A.gain(x, torch.tensor([-20.0, -1.0]))
    assert torch.allclose(y[0], x[0] * 0.1, atol=1e-7)
    assert torch.allclose(y[1], x[1] * 10 ** (-1 / 20), atol=1e-7)
    loud = torch.full((1, 1, 10), 3.0)
    assert A.gain(loud, torch.tensor([-1.0])).max() == 1.0


def test_delay_adds_half_volume_copy_at_lag() -> None:
    x = _noise(2, 16384)
    lags = torch.tensor([4410, 6615])  # 200 and 300 ms at 22.05 kHz
    y = A.delay(x, lags, volume=0.5)
    for b, lag in enumerate(lags.tolist()):
        assert torch.allclose(y[b, 0, :lag], x[b, 0, :lag] / 2)
        assert torch.allclose(y[b, 0, lag:], (x[b, 0, lag:] + 0.5 * x[b, 0, :-lag]) / 2)
        # Cross-correlation of output and input peaks at 0 and at the lag, nowhere else.
        n = 2 * x.shape[-1]
        xcorr = torch.fft.irfft(torch.fft.rfft(y[b, 0], n) * torch.fft.rfft(x[b, 0], n).conj(), n)
        assert int(xcorr[100 : x.shape[-1]].argmax()) + 100 == lag


def _tail_energy(y: torch.Tensor, start: int) -> torch.Tensor:
    return y[:, 0, start:].pow(2).sum(-1)


def test_reverb_lengthens_decay_and_keeps_length() -> None:
    x = torch.zeros(4, 1, SR)
    x[..., 1000] = 1.0
    params = torch.tensor([[10, 50, 10], [100, 50, 100], [100, 0, 100], [100, 100, 100]])
    y = _reverb(x, params, torch.Generator().manual_seed(0))
    assert y.shape == x.shape
    assert y[..., :1000].abs().max() < 1e-6  # causal
    tail = _tail_energy(y, 1000 + SR // 10)  # energy 100 ms after the impulse
    assert tail[0] < 1e-6  # small room, low reverberance: gone after 100 ms
    assert (tail[1:] > 0.01).all()  # large room, full reverberance: still ringing
    # Damping shortens the high-frequency tail.
    late = y[..., 1000 + SR // 10 :]
    assert _band_db(late[3:4], late[2:3], 4000, 11000) < -10


def test_reverb_decay_follows_sox_parameters() -> None:
    params = torch.tensor([[0, 50, 100], [100, 50, 100], [100, 50, 0], [100, 100, 100]])
    tau = R.reverb_decay_seconds(params, torch.tensor([100.0, 8000.0]), SR)
    assert tau[1, 0] > 10 * tau[0, 0]  # reverberance raises the feedback
    assert tau[1, 0] > 5 * tau[2, 0]  # room size lengthens the comb loops
    assert (tau[:, 1] < tau[:, 0]).all() and tau[3, 1] < tau[1, 1]  # damping: high bands first
    t60 = 3 * math.log(10) * tau[1, 0]  # sox at 100 % reverberance and room: ~10 s at low f
    assert 5 < t60 < 15


def test_random_crop_is_contiguous_and_pads_short_clips() -> None:
    g = torch.Generator().manual_seed(0)
    long = torch.arange(3 * 1000, dtype=torch.float32).reshape(3, 1, 1000)
    crops = A.random_crop(long, 100, g)
    assert crops.shape == (3, 1, 100)
    steps = crops.diff(dim=-1)
    assert (steps == 1).all()  # a contiguous slice of the source
    starts = crops[:, 0, 0] - long[:, 0, 0]
    assert ((starts >= 0) & (starts <= 900)).all() and len(set(starts.tolist())) > 1
    clips = [torch.ones(1, 50), torch.ones(300)]
    mixed = A.random_crop(clips, 100, g)
    assert mixed.shape == (2, 1, 100)
    assert mixed[0, 0, :50].eq(1).all() and mixed[0, 0, 50:].eq(0).all()
    again = A.random_crop(long, 100, torch.Generator().manual_seed(0))
    assert torch.equal(again, crops)


def test_chain_is_deterministic_per_seed_and_views_differ() -> None:
    chain = A.AugmentChain(AugmentConfig(), SR)
    x = _noise(4, 8192)
    first = chain(x, torch.Generator().manual_seed(7))
    again = chain(x, torch.Generator().manual_seed(7))
    assert torch.equal(first, again)
    g = torch.Generator().manual_seed(7)
    view_i, view_j = chain(x, g), chain(x, g)
    assert ((view_i - view_j).abs().amax(dim=(1, 2)) > 1e-4).all()  # every example's views differ
    assert torch.equal(x, _noise(4, 8192))  # the input is not modified in place


def test_chain_split_over_processes_augments_each_row_as_the_whole_batch_does() -> None:
    # Every transform fires on some rows, noise and reverb included (their signals are drawn for
    # the whole global batch), so two "ranks" of 3 rows must equal one process of 6.
    config = AugmentConfig(noise_p=0.5, reverb_p=0.5, cpu_chunk=2)
    chain, x = A.AugmentChain(config, SR), _noise(6, 8192, seed=4)
    whole = chain(x, torch.Generator().manual_seed(9))
    halves = [
        chain(x[first : first + 3], torch.Generator().manual_seed(9), A.Rows(first, 6))
        for first in (0, 3)
    ]
    assert torch.allclose(torch.cat(halves), whole, atol=1e-6)
    assert ((whole - x).abs().amax(dim=(1, 2)) > 1e-4).all()  # not vacuous: every row changed


def test_chain_draws_each_example_independently() -> None:
    only_polarity = AugmentConfig(
        polarity_p=0.8, noise_p=0, gain_p=0, filter_p=0, delay_p=0, pitch_p=0, reverb_p=0
    )
    x = torch.ones(2000, 1, 4)
    y = A.AugmentChain(only_polarity, SR)(x, torch.Generator().manual_seed(0))
    flipped = (y[:, 0, 0] < 0).double().mean()
    assert abs(flipped - 0.8) < 0.03


def test_chain_decisions_do_not_depend_on_other_transforms() -> None:
    def attenuated(noise_p: float) -> torch.Tensor:
        cfg = AugmentConfig(
            polarity_p=0, noise_p=noise_p, gain_p=0.5, gain_min_db=-20, gain_max_db=-20,
            filter_p=0, delay_p=0, pitch_p=0, reverb_p=0,
        )  # fmt: skip
        y = A.AugmentChain(cfg, SR)(torch.ones(64, 1, 256), torch.Generator().manual_seed(5))
        return y.mean(dim=(1, 2)) < 0.5

    # Noise drawn from the same generator before the gain must not reshuffle the gain's coins.
    chosen = attenuated(0.0)
    assert 10 < int(chosen.sum()) < 54
    assert torch.equal(attenuated(1.0), chosen)


def test_chain_with_zero_probabilities_is_identity_and_all_ones_changes_all() -> None:
    off = AugmentConfig(
        polarity_p=0, noise_p=0, gain_p=0, filter_p=0, delay_p=0, pitch_p=0, reverb_p=0
    )
    x = _noise(3, 8192)
    assert torch.equal(A.AugmentChain(off, SR)(x, torch.Generator()), x)
    on = AugmentConfig(
        polarity_p=1, noise_p=1, gain_p=1, filter_p=1, delay_p=1, pitch_p=1, reverb_p=1
    )
    y = A.AugmentChain(on, SR)(x, torch.Generator().manual_seed(1))
    assert ((y - x).abs().amax(dim=(1, 2)) > 1e-3).all()


def test_config_rejects_bad_probability() -> None:
    with pytest.raises(ConfigError, match="pitch_p"):
        AugmentConfig(pitch_p=1.5)

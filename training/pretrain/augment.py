"""CLMR's waveform augmentation chain in plain torch: batched, any device, one Generator."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Generator, Tensor, nn

from training.pretrain.config import AugmentConfig
from training.pretrain.reverb import fft_convolve, impulse_noise, reverb, work_dtype

_Fn = Callable[[Tensor, Tensor], Tensor]  # (selected examples, their batch indices) -> output


def _rand(g: Generator, *shape: int) -> Tensor:
    """U[0, 1) float64 draws from g, returned on the CPU (parameters, not signals)."""
    return torch.rand(shape, generator=g, device=g.device, dtype=torch.float64).cpu()


def _col(values: Tensor) -> Tensor:
    return values.reshape(-1, 1, 1)  # [B] -> [B, 1, 1], to broadcast over [B, 1, T]


def random_crop(audio: Tensor | Sequence[Tensor], n_samples: int, generator: Generator) -> Tensor:
    """A random contiguous crop per example (t-a RandomResizedCrop); short clips are zero-padded.

    Args:
        audio: [B, 1, T_long] tensor, or a list of [1, T_i] / [T_i] tensors of any lengths.

    Returns:
        [B, 1, n_samples], dtype and device of the input.
    """
    clips = [a.reshape(-1) for a in audio]
    lengths = torch.tensor([len(c) for c in clips], dtype=torch.float64)
    starts = (_rand(generator, len(clips)) * (lengths - n_samples + 1).clamp(min=1)).long()
    crops = [c[s : s + n_samples] for c, s in zip(clips, starts.tolist(), strict=True)]
    return torch.stack([F.pad(c, (0, n_samples - len(c))) for c in crops])[:, None]


def polarity(x: Tensor, mask: Tensor) -> Tensor:
    """Negate the examples where mask [B] (bool) is set."""
    return torch.where(_col(mask.to(x.device)), -x, x)


def add_noise(x: Tensor, std_ratio: Tensor, noise: Tensor) -> Tensor:
    """Add Gaussian noise of std `std_ratio [B]` x each example's std (t-a Noise).

    `noise` is standard normal of x's shape (drawn by the caller, who owns the random stream).
    """
    std = x.float().std(dim=(1, 2)) * std_ratio.to(x.device)
    return (x + noise.to(x.device) * _col(std)).to(x.dtype)


def gain(x: Tensor, gain_db: Tensor) -> Tensor:
    """Scale each example by `gain_db [B]` dB, then clamp to [-1, 1] (torchaudio Vol)."""
    factor = 10.0 ** (gain_db.to(x.device, torch.float32) / 20.0)
    return (x * _col(factor)).clamp(-1.0, 1.0).to(x.dtype)


def sinc_lowpass_kernels(cutoff_hz: Tensor, sample_rate: int, zeros: int = 8) -> Tensor:
    """julius's Hann-windowed sinc low-pass per cutoff: [B] Hz -> [B, 2H + 1] float64, CPU.

    Each kernel keeps julius's half size int(zeros / (2 cutoff / sample_rate)), is zero-padded
    to the longest one (centred), and sums to 1.
    """
    cutoff = cutoff_hz.detach().double().cpu().reshape(-1) / sample_rate
    half = torch.floor(zeros / cutoff / 2)
    h_max = int(half.max())
    t = torch.arange(-h_max, h_max + 1, dtype=torch.float64)[None]
    hann = 0.5 + 0.5 * torch.cos(math.pi * t / half[:, None])
    window = torch.where(t.abs() <= half[:, None], hann, 0.0)
    kernels = 2 * cutoff[:, None] * window * torch.sinc(2 * cutoff[:, None] * t)
    return kernels / kernels.sum(-1, keepdim=True)


def lowpass_fir(x: Tensor, cutoff_hz: Tensor | float, sample_rate: int) -> Tensor:
    """julius.lowpass_filter (replicate padding) per example, via FFT: [B, 1, T] -> [B, 1, T].

    `cutoff_hz` is one float or [B] Hz; output dtype is x's.
    """
    cutoff = torch.as_tensor(cutoff_hz, dtype=torch.float64).expand(x.shape[0])
    dtype = work_dtype(x)
    kernels = sinc_lowpass_kernels(cutoff, sample_rate).to(x.device, dtype)
    half = (kernels.shape[-1] - 1) // 2
    padded = F.pad(x.to(dtype), (half, half), mode="replicate")
    out = fft_convolve(padded, kernels)[..., 2 * half : 2 * half + x.shape[-1]]
    return out.to(x.dtype)


def highpass_fir(x: Tensor, cutoff_hz: Tensor | float, sample_rate: int) -> Tensor:
    """x minus its windowed-sinc low-pass (julius.highpass_filter). Shapes as `lowpass_fir`."""
    return x - lowpass_fir(x, cutoff_hz, sample_rate)


def delay(x: Tensor, delay_samples: Tensor, volume: float = 0.5) -> Tensor:
    """(x + volume * x delayed by `delay_samples [B]` (int), zero-filled) / 2, as t-a Delay."""
    src = torch.arange(x.shape[-1], device=x.device)[None] - delay_samples.to(x.device)[:, None]
    shifted = x.gather(-1, src.clamp(min=0)[:, None]) * (src >= 0)[:, None].to(x.dtype)
    return (x + volume * shifted) / 2


def pitch_shift(x: Tensor, cents: Tensor | float, sample_rate: int) -> Tensor:
    """Shift pitch by `cents [B]`, keeping the length, with a phase vocoder.

    Equivalent to a phase-vocoder time-stretch by r = 2**(cents/1200) followed by resampling by 1/r,
    with the resampling done in the STFT domain: output bin k takes the magnitude of input bin k/r
    (linear interpolation) and r x the input's instantaneous frequency; phases are re-accumulated
    frame by frame. Frames of ~93 ms (2048 samples at 22.05 kHz), hop 1/4.

    Args:
        x: [B, 1, T] -> [B, 1, T], same dtype; T > n_fft / 2.
        cents: [B] or a float (need not be an integer).
    """
    b, _, length = x.shape
    dtype, device = work_dtype(x), x.device
    ratio = (2.0 ** (torch.as_tensor(cents, dtype=torch.float64).cpu() / 1200)).expand(b)
    n_fft = 1 << round(math.log2(0.093 * sample_rate))
    hop = n_fft // 4
    window = torch.hann_window(n_fft, dtype=dtype, device=device)
    signal = x.reshape(b, length).to(dtype)
    spec = torch.stft(signal, n_fft, hop, window=window, return_complex=True)
    mag, phase = spec.abs(), spec.angle()
    n_bins, n_frames = spec.shape[1:]
    # Per-bin quantities in float64 on the CPU ([B, F] only); the bin-centre phase step per hop is
    # taken modulo 2 pi there, so float32 never subtracts large phases.
    step = 2 * math.pi * hop / n_fft
    bins = torch.arange(n_bins, dtype=torch.float64)
    expected = torch.remainder(step * bins, 2 * math.pi).to(device, dtype)[:, None]
    src = bins[None] / ratio[:, None]  # fractional source bin of each output bin
    lo = src.floor().long().clamp(max=n_bins - 2)
    near = src.round().long().clamp(max=n_bins - 1)
    carrier = torch.remainder(ratio[:, None] * step * near, 2 * math.pi).to(device, dtype)
    frac = (src - lo).to(device, dtype)[..., None]
    inside = (src <= n_bins - 1).to(device)[..., None]

    dev = phase.diff(dim=-1) - expected
    dev -= 2 * math.pi * torch.round(dev * (0.5 / math.pi))  # deviation from the bin centre
    deviation = torch.cat([phase[..., :1], dev], dim=-1)  # frame 0 carries the initial phase
    rows = torch.arange(b, device=device)[:, None]  # whole-row indexing: much faster than gather
    lo, near = lo.to(device), near.to(device)
    m_lo, m_hi = mag[rows, lo], mag[rows, lo + 1]
    new_mag = (m_lo + frac * (m_hi - m_lo)) * inside
    new_step = deviation[rows, near] * ratio.to(device, dtype)[:, None, None]
    new_step[..., 1:] += carrier[..., None]
    new_phase = torch.remainder(new_step, 2 * math.pi).cumsum(dim=-1)
    out = torch.istft(torch.polar(new_mag, new_phase), n_fft, hop, window=window, length=length)
    return out[:, None].to(x.dtype)


@dataclass(frozen=True)
class Rows:
    """Which rows of the global batch one process holds (all of them without DDP)."""

    first: int  # global index of this process's first row
    total: int  # rows in the global batch


class AugmentChain(nn.Module):
    """CLMR v2's chain after the crop: polarity, noise, gain, high/low-pass, delay, pitch, reverb.

    Every example draws its own apply decision and parameters; all draws come from the generator
    passed to `forward`, in a fixed order, so a seed fixes the output. The draws are made for the
    whole global batch and each process keeps its rows, so an example is augmented the same way
    whatever the number of processes (the cost: each process draws the signals of every row
    that fires, e.g. the reverb noise, for the global batch).
    """

    def __init__(self, config: AugmentConfig | None = None, sample_rate: int = 22050) -> None:
        super().__init__()
        self.config = config or AugmentConfig()
        self.sample_rate = sample_rate

    def forward(self, audio: Tensor, generator: Generator, rows: Rows | None = None) -> Tensor:
        """Augment audio [B, 1, T] (any float dtype and device) -> [B, 1, T], same dtype/device.

        `rows` places these B examples in the global batch (default: they are all of it).
        """
        c, sr = self.config, self.sample_rate
        d = _draw(c, sr, generator, rows or Rows(0, audio.shape[0]), audio.shape)
        x = self._maybe(audio, d.fire[0], lambda s, i: -s)
        x = self._maybe(x, d.fire[1], lambda s, i: add_noise(s, d.ratio[i], d.noise[i]))
        x = self._maybe(x, d.fire[2], lambda s, i: gain(s, d.gain_db[i]))
        x = self._maybe(x, d.fire[3], lambda s, i: _highlow(s, d.cutoff[i], d.high[i], sr))
        x = self._maybe(x, d.fire[4], lambda s, i: delay(s, d.lag[i], c.delay_volume))
        x = self._maybe(x, d.fire[5], lambda s, i: pitch_shift(s, d.cents[i], sr))
        wet = c.reverb_wet
        return self._maybe(x, d.fire[6], lambda s, i: reverb(s, d.room[i], sr, d.ir_noise[i], wet))

    def _maybe(self, x: Tensor, fire: Tensor, fn: _Fn) -> Tensor:
        # Transform only the selected examples (cheap for rare transforms); on CPU in small groups,
        # since the STFT/FFT intermediates of a whole batch fall out of cache.
        index = fire.nonzero().squeeze(1)
        if index.numel() == 0:
            return x
        chunk = self.config.cpu_chunk if x.device.type == "cpu" else 0
        parts = [fn(x[i.to(x.device)], i) for i in index.split(chunk or len(index))]
        return x.index_copy(0, index.to(x.device), torch.cat(parts))


@dataclass(frozen=True)
class _Draws:
    """One process's rows of every draw of the chain (CPU tensors, except the signals)."""

    fire: Tensor  # [7, B] bool: polarity, noise, gain, filter, delay, pitch, reverb
    ratio: Tensor  # [B] noise std / signal std
    gain_db: Tensor  # [B]
    high: Tensor  # [B] bool: high-pass (else low-pass)
    cutoff: Tensor  # [B] Hz
    lag: Tensor  # [B] delay, samples
    cents: Tensor  # [B] pitch shift
    room: Tensor  # [B, 3] reverberance, damping, room size
    noise: Tensor  # [B, 1, T] standard normals (zeros where noise does not fire), or empty
    ir_noise: Tensor  # [B, n_ir // 2 + 1, 2] the reverb's white noise, or empty


def _draw(c: AugmentConfig, sr: int, g: Generator, rows: Rows, shape: torch.Size) -> _Draws:
    """Every decision and parameter for the global batch, in a fixed order, then the signals."""
    # A fixed order: changing one transform's probability (or the noise it consumes) leaves the
    # other transforms' draws unchanged.
    total = rows.total
    mine = slice(rows.first, rows.first + shape[0])
    probs = (c.polarity_p, c.noise_p, c.gain_p, c.filter_p, c.delay_p, c.pitch_p, c.reverb_p)
    fire = _rand(g, len(probs), total) < torch.tensor(probs, dtype=torch.float64)[:, None]
    ratio = _span(_rand(g, total), c.noise_min_ratio, c.noise_max_ratio)
    gain_db = _span(_rand(g, total), c.gain_min_db, c.gain_max_db)
    high = _rand(g, total) < 0.5
    hp_hz = _span(_rand(g, total), c.highpass_min_hz, c.highpass_max_hz)
    cutoff = torch.where(high, hp_hz, _span(_rand(g, total), c.lowpass_min_hz, c.lowpass_max_hz))
    ms = torch.tensor(c.delay_ms, dtype=torch.float64)[_choice(g, len(c.delay_ms), total)]
    lag = (ms * sr / 1000).long()  # t-a: int(ms * sample_rate / 1000)
    cents = c.pitch_min_cents + _choice(g, c.pitch_max_cents - c.pitch_min_cents + 1, total)
    room = _choice(g, c.reverb_max + 1, total, 3)
    length = shape[-1]
    noise = _own_rows(
        fire[1], mine, lambda k: torch.randn(k, 1, length, generator=g, device=g.device)
    )
    ir_noise = _own_rows(fire[6], mine, lambda k: impulse_noise(room[fire[6]], length, sr, g))
    return _Draws(
        fire[:, mine], ratio[mine], gain_db[mine], high[mine], cutoff[mine], lag[mine],
        cents[mine], room[mine], noise, ir_noise,
    )  # fmt: skip


def _span(u: Tensor, low: float, high: float) -> Tensor:
    return low + (high - low) * u


def _own_rows(fire: Tensor, mine: slice, draw: Callable[[int], Tensor]) -> Tensor:
    """One draw for the global batch's firing rows (`draw(count)`), spread over this process's
    rows (zeros where a row does not fire; empty when no row of the global batch fires)."""
    count = int(fire.sum())
    if count == 0:
        return torch.zeros(0)
    drawn = draw(count)
    local = fire[mine]
    position = (fire.cumsum(0) - 1)[mine][local]  # each firing row's place among the draws
    out = drawn.new_zeros(len(local), *drawn.shape[1:])
    out[local.to(out.device)] = drawn[position.to(drawn.device)]
    return out


def _choice(g: Generator, count: int, *shape: int) -> Tensor:
    """Uniform integers in [0, count), int64 on the CPU."""
    return torch.randint(count, shape, generator=g, device=g.device).cpu()


def _highlow(x: Tensor, cutoff_hz: Tensor, high: Tensor, sample_rate: int) -> Tensor:
    """High-pass where `high [B]` is set, else low-pass, in one batched FFT convolution."""
    low = lowpass_fir(x, cutoff_hz, sample_rate)
    return torch.where(_col(high.to(x.device)), x - low, low)

"""Synthetic reverb for the augmentation chain: band-split decaying noise, FFT-convolved."""

from __future__ import annotations

import math

import torch
from torch import Generator, Tensor


# FFT helpers live here, not in augment.py, so that module imports this one and not the reverse.
def work_dtype(x: Tensor) -> torch.dtype:
    """The dtype to compute x in: its own if float32/64, else float32."""
    # FFTs and STFTs need float32/64; half-precision inputs are computed in float32.
    return x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32


def fft_convolve(x: Tensor, kernels: Tensor) -> Tensor:
    """Full linear convolution via the FFT: x [B, 1, T], kernels [B, K] -> [B, 1, T + K - 1]."""
    n = x.shape[-1] + kernels.shape[-1] - 1
    n_fft = 1 << (n - 1).bit_length()
    spec = torch.fft.rfft(x, n_fft) * torch.fft.rfft(kernels, n_fft)[:, None]
    full: Tensor = torch.fft.irfft(spec, n_fft)[..., :n]
    return full


# sox reverb constants (sox reverb.c, freeverb): feedback from reverberance, mean comb length.
_FB_A = -1 / math.log(1 - 0.3)  # feedback 0.3 at reverberance 0
_FB_B = 100 / (math.log(1 - 0.98) * _FB_A + 1)  # feedback 0.98 at reverberance 100
_COMB_SECONDS = 1378 / 44100  # mean of freeverb's eight comb lengths
_BAND_EDGES_HZ = (0.0, 1000.0, 3000.0, 7000.0)  # bands of the tail (lower edges; last to Nyquist)


def reverb_decay_seconds(params: Tensor, freq_hz: Tensor, sample_rate: int) -> Tensor:
    """Amplitude e-folding time of sox's reverb tail per frequency, [B, n_freq] float64.

    One pass through a freeverb comb multiplies by feedback(reverberance) x |one-pole(damping)| and
    takes comb length x room scale, so tau = loop / -ln(gain per pass).

    Args:
        params: [B, 3] reverberance, damping, room size, each in [0, 100].
        freq_hz: [n_freq] frequencies.
    """
    reverberance, damping, room = params.detach().double().cpu().T[..., None]  # each [B, 1]
    feedback = 1 - torch.exp((reverberance - _FB_B) / (_FB_A * _FB_B))
    pole = damping / 100 * 0.3 + 0.2  # sox hf_damping, the comb loop's one-pole low-pass
    omega = 2 * math.pi * freq_hz.double().cpu()[None] / sample_rate
    lowpass = (1 - pole) / torch.sqrt(1 - 2 * pole * torch.cos(omega) + pole**2)
    loop = _COMB_SECONDS * (room / 100 * 0.9 + 0.1)
    tau: Tensor = loop / -torch.log(feedback * lowpass)
    return tau


def _band_edges(sample_rate: int) -> tuple[Tensor, Tensor]:
    """The tail's band edges up to Nyquist and each band's centre frequency (Hz, float64)."""
    nyquist = sample_rate / 2
    lower = [e for e in _BAND_EDGES_HZ if e < nyquist]
    edges = torch.tensor([*lower, nyquist], dtype=torch.float64)
    return edges, torch.sqrt(edges[:-1].clamp(min=edges[1] / 4) * edges[1:])


def impulse_noise(params: Tensor, length: int, sample_rate: int, generator: Generator) -> Tensor:
    """The white noise `reverb` shapes into impulse responses, drawn as its spectrum.

    One IR length serves every row: the slowest row's T60 (even, at most `length` + 1), so a batch
    drawn whole and split across processes gives each row the same IR as when drawn together.

    Args:
        params: [B, 3] reverberance, damping, room size in [0, 100].

    Returns:
        [B, n_ir // 2 + 1, 2] i.i.d. standard normals (real and imaginary parts), on the
        generator's device.
    """
    tau = reverb_decay_seconds(params, _band_edges(sample_rate)[1], sample_rate)
    n_ir = int(min(length, math.ceil(3 * math.log(10) * float(tau.max()) * sample_rate) + 1))
    n_ir += n_ir % 2  # even, so the spectrum's size gives the length back
    return torch.randn(len(params), n_ir // 2 + 1, 2, generator=generator, device=generator.device)


def reverb(x: Tensor, params: Tensor, sample_rate: int, noise: Tensor, wet: float = 0.5) -> Tensor:
    """Synthetic reverb: convolve with exponentially decaying noise, mixed with the dry signal.

    The impulse response is white noise split into four bands, each decaying at sox's rate for
    its centre frequency (`reverb_decay_seconds`: reverberance and room size set the decay, damping
    shortens the high bands). It is normalised to unit energy and cut at the slowest band's T60.

    Args:
        x: [B, 1, T] -> [B, 1, T], same dtype.
        params: [B, 3] reverberance, damping, room size in [0, 100].
        noise: [B, n_ir // 2 + 1, 2] from `impulse_noise` (its size sets the IR length).
        wet: out = (1 - wet) x + wet (x * ir).
    """
    length = x.shape[-1]
    dtype, device = work_dtype(x), x.device
    edges, centres = _band_edges(sample_rate)
    tau = reverb_decay_seconds(params, centres, sample_rate)  # [B, bands]
    n_ir = 2 * (noise.shape[1] - 1)
    # White noise drawn directly as its spectrum (i.i.d. complex Gaussian bins): saves one FFT.
    spectrum = torch.view_as_complex(noise.to(device, dtype).contiguous())
    freqs = torch.fft.rfftfreq(n_ir, 1 / sample_rate, device=device, dtype=dtype)
    band_of_bin = torch.bucketize(freqs, edges[1:-1].to(device, dtype), right=True)
    masks = band_of_bin[None] == torch.arange(len(centres), device=device)[:, None]
    bands = torch.fft.irfft(spectrum[:, None] * masks, n_ir)  # [B, bands, n_ir]
    # exp(-t / tau) = exp(-block start / tau) x exp(-offset / tau): two small exps, one product.
    block = math.isqrt(n_ir) + 1
    n_blocks = -(-n_ir // block)
    rate = 1 / (tau.to(device, dtype) * sample_rate)  # [B, bands] per sample
    steps = torch.arange(max(block, n_blocks), device=device, dtype=dtype)
    coarse = torch.exp(-rate[..., None] * steps[:n_blocks] * block)
    fine = torch.exp(-rate[..., None] * steps[:block])
    envelope = (coarse[..., None] * fine[..., None, :]).flatten(-2)[..., :n_ir]
    ir = (bands * envelope).sum(1)
    ir = ir / ir.norm(dim=-1, keepdim=True)
    wet_signal = fft_convolve(x.to(dtype), ir)[..., :length]
    return ((1 - wet) * x.to(dtype) + wet * wet_signal).to(x.dtype)

"""What SampleCNN's filters respond to: gradient ascent on a waveform, then its spectrum.

The CLMR thesis's visualisation: for each filter of a layer, start from a random waveform, climb
the gradient of that filter's mean activation (before its ReLU), and show the magnitude spectrum
of the optimised input; filters are sorted by the frequency of their spectral peak.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from clmr_embed.errors import CheckpointError, ConfigError
from training.config import EncoderConfig
from training.samplecnn import SampleCNN
from training.weights import load_checkpoint

MIN_SAMPLES = 729  # the thesis's input: 3^6 samples (one frame of layer 6)


@dataclass(frozen=True)
class AscentConfig:
    """How the inputs are optimised."""

    steps: int = 150  # Adam steps per layer (all filters of a layer at once)
    lr: float = 0.05  # Adam step size on the unit-RMS waveform
    seed: int = 0  # seed of the random starting waveforms


def input_samples(layer: int) -> int:
    """Input length for `layer` (1-based): 729 samples up to layer 6, then one frame, 3^layer.

    Block k of SampleCNN downsamples by 3, so one output frame of layer k covers 3^k samples
    (the padded convolutions widen the exact receptive field a little beyond that).
    """
    return max(MIN_SAMPLES, int(3**layer))


def encoder_from_onnx(path: Path) -> SampleCNN:
    """A SampleCNN with the weights of an exported clmr-embed ONNX (BatchNorm folded into convs).

    Export folds each BatchNorm into its convolution, so the rebuilt network gets identity
    BatchNorms (unit variance, zero mean): the same function as the ONNX graph.
    """
    import onnx
    from onnx import numpy_helper

    weights = {
        init.name.removeprefix("encoder."): numpy_helper.to_array(init)
        for init in onnx.load(str(path)).graph.initializer
    }
    convs = sorted(k for k in weights if k.startswith("sequential.") and k.endswith(".0.weight"))
    if not convs:
        raise CheckpointError(f"{path} holds no SampleCNN convolutions named sequential.*")
    channels = tuple(int(weights[f"sequential.{i}.0.weight"].shape[0]) for i in range(len(convs)))
    encoder = SampleCNN(EncoderConfig(channels=channels))
    state = encoder.state_dict()
    for i in range(len(channels)):
        w = torch.from_numpy(weights[f"sequential.{i}.0.weight"].copy())
        state[f"sequential.{i}.0.weight"] = w.reshape(state[f"sequential.{i}.0.weight"].shape)
        state[f"sequential.{i}.0.bias"] = torch.from_numpy(weights[f"sequential.{i}.0.bias"].copy())
        var = state[f"sequential.{i}.1.running_var"]
        state[f"sequential.{i}.1.running_var"] = torch.full_like(var, 1 - 1e-5)  # BN eps
    encoder.load_state_dict(state)
    return encoder


def load_encoder(model: Path) -> SampleCNN:
    """The encoder of a checkpoint (.pt/.ckpt, any supported layout) or an exported .onnx file."""
    if model.suffix == ".onnx":
        return encoder_from_onnx(model)
    ckpt = load_checkpoint(model)
    if ckpt.encoder_state is None:
        raise CheckpointError(f"{model} holds no encoder weights")
    encoder = SampleCNN(ckpt.encoder_config)
    encoder.load_state_dict(ckpt.encoder_state)
    return encoder


def _pre_relu(encoder: SampleCNN, layer: int) -> nn.Module:
    """Blocks 1..layer-1 whole, then conv + BatchNorm of `layer` (its ReLU and pool left out)."""
    blocks = [block for block in encoder.sequential if isinstance(block, nn.Sequential)]
    return nn.Sequential(*blocks[: layer - 1], *list(blocks[layer - 1])[:2])


def optimise_inputs(
    encoder: SampleCNN, layer: int, config: AscentConfig
) -> npt.NDArray[np.float32]:
    """[n_filters, input_samples(layer)] unit-RMS waveforms, each maximising one filter's mean.

    Raises:
        ConfigError: `layer` is not a block of this encoder.
    """
    if not 1 <= layer <= len(encoder.sequential):
        raise ConfigError(f"layer must be in 1..{len(encoder.sequential)}, got {layer}")
    net = _pre_relu(encoder, layer).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    n_filters = encoder.config.channels[layer - 1]
    gen = torch.Generator().manual_seed(config.seed)
    x = torch.randn(n_filters, 1, input_samples(layer), generator=gen).requires_grad_(True)
    optimiser = torch.optim.Adam([x], lr=config.lr)
    own = torch.arange(n_filters)
    for _ in range(config.steps):
        unit = x / x.pow(2).mean(dim=-1, keepdim=True).sqrt()  # fixed energy: only shape moves
        activation = net(unit)[own, own].mean(dim=-1)  # filter f's mean over time, on input f
        optimiser.zero_grad()
        (-activation.sum()).backward()
        optimiser.step()
    with torch.no_grad():
        unit = x / x.pow(2).mean(dim=-1, keepdim=True).sqrt()
    return unit[:, 0].numpy().astype(np.float32)


def spectra(inputs: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """Magnitude spectra [n, n_samples // 2 + 1] of Hann-windowed inputs, DC to Nyquist."""
    window = np.hanning(inputs.shape[1])
    return np.abs(np.fft.rfft(inputs * window, axis=1))


def peak_order(mags: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """Filter order by the bin of each spectrum's peak (ties by filter index)."""
    return np.argsort(mags.argmax(axis=1), kind="stable")


def peak_concentration(
    mags: npt.NDArray[np.float64], half_width: int = 2
) -> npt.NDArray[np.float64]:
    """Per filter: energy within +-half_width bins of its peak over that band's white-noise share.

    1 means no more energy near the peak than white noise puts there; the thesis's tuned filters
    give far more.
    """
    power = mags**2
    peaks = power.argmax(axis=1)
    bins = np.arange(power.shape[1])
    band = np.abs(bins[None, :] - peaks[:, None]) <= half_width
    share = (power * band).sum(axis=1) / power.sum(axis=1)
    concentration: npt.NDArray[np.float64] = share / (band.sum(axis=1) / power.shape[1])
    return concentration


def render(layers: dict[int, npt.NDArray[np.float64]], sample_rate: int, out: Path) -> Path:
    """One panel per layer: columns = filters sorted by peak frequency, rows = 0..Nyquist (dB)."""
    from matplotlib.figure import Figure  # local: matplotlib is slow to import

    fig = Figure(figsize=(3.2 * len(layers), 3.4), layout="constrained")
    axes = fig.subplots(1, len(layers), squeeze=False)[0]
    for ax, (layer, mags) in zip(axes, sorted(layers.items()), strict=True):
        ordered = mags[peak_order(mags)]
        db = 20 * np.log10(ordered / ordered.max(axis=1, keepdims=True) + 1e-6)
        ax.imshow(
            db.T,
            origin="lower",
            aspect="auto",
            cmap="magma",
            vmin=-40,
            vmax=0,
            extent=(0, len(mags), 0, sample_rate / 2),
            interpolation="nearest",
        )
        ax.set_title(f"layer {layer}")
        ax.set_xlabel("filter (sorted by peak)")
    axes[0].set_ylabel("frequency (Hz)")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    return out

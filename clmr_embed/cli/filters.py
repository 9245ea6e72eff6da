"""`clmr-embed filters`: the thesis's filter visualisation; torch and training load lazily."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from clmr_embed.cli.options import handle_errors, require, resolve_or_fetch


def _layers(value: str) -> list[int]:
    try:
        layers = sorted({int(part) for part in value.split(",") if part.strip()})
    except ValueError:
        message = f"give comma-separated layer numbers, e.g. 1,4,6; got {value!r}"
        raise typer.BadParameter(message, param_hint="--layers") from None
    if not layers or layers[0] < 1 or layers[-1] > 11:
        message = f"layers are 1..11 (SampleCNN's blocks); got {value!r}"
        raise typer.BadParameter(message, param_hint="--layers")
    return layers


@handle_errors
def filters_command(
    model: Annotated[str, typer.Argument(help="Model name, exported .onnx file or checkpoint.")],
    layers: Annotated[str, typer.Option(help="Comma-separated layers (1-11) to show.")] = "1,4,6",
    out: Annotated[Path, typer.Option(help="Image to write (PNG).")] = Path("filters.png"),
    steps: Annotated[int, typer.Option(min=1, max=5000, help="Gradient-ascent steps.")] = 150,
    seed: Annotated[int, typer.Option(help="Seed of the random starting waveforms.")] = 0,
) -> None:
    """For each filter of the layers: gradient ascent on a random waveform, then its spectrum."""
    chosen = _layers(layers)  # a usage error (exit 2) before anything loads
    require("train", "filters")
    from clmr_embed.cli.render import err
    from clmr_embed.cli.render import out as stdout
    from training.filters import AscentConfig, load_encoder, optimise_inputs, render, spectra

    encoder = load_encoder(Path(resolve_or_fetch(model))).eval()  # a name, .onnx or checkpoint
    config = AscentConfig(steps=steps, seed=seed)
    mags = {}
    for layer in chosen:
        err.print(f"layer {layer}: optimising {encoder.config.channels[layer - 1]} inputs ...")
        mags[layer] = spectra(optimise_inputs(encoder, layer, config))
    stdout.print(str(render(mags, encoder.config.sample_rate, out)))

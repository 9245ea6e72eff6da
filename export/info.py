"""The one builder of an artifact's ModelInfo: shape, outputs, provenance, the trained rule."""

from __future__ import annotations

from dataclasses import dataclass

from clmr_embed import __version__
from clmr_embed.artifact import ARCHITECTURES, METHODS, ModelInfo, is_trained
from training.config import CPCConfig, EncoderConfig


@dataclass(frozen=True)
class Shape:
    """What goes in and comes out of the encoder part."""

    sample_rate: int  # Hz the encoder expects
    window_samples: int  # samples per window
    embedding_dim: int  # embedding width
    architecture: str = ARCHITECTURES[0]  # the encoder's network (clmr.architecture)

    @classmethod
    def of_encoder(cls, config: EncoderConfig | CPCConfig) -> Shape:
        """The shape of a SampleCNN or CPC config."""
        arch = ARCHITECTURES[1] if isinstance(config, CPCConfig) else ARCHITECTURES[0]
        return cls(config.sample_rate, config.window_samples, config.embedding_dim, arch)

    @classmethod
    def of_info(cls, info: ModelInfo) -> Shape:
        """The shape an exported file declares."""
        return cls(info.sample_rate, info.window_samples, info.embedding_dim, info.architecture)


@dataclass(frozen=True)
class Provenance:
    """Where the weights came from, under what licence; decides clmr.trained."""

    licence: str  # licence note of the weights (and the data they were trained on)
    source_sha256: str  # checksum of the checkpoint file (or of the weights, without a file)
    description: str  # free text: data, steps, where it was exported from
    sources: tuple[str, ...] = ()  # Checkpoint.source of each part ("clmr-embed" for ours)
    step: int = 0  # optimiser steps our checkpoint took
    declared: bool | None = None  # what the weights say of themselves (the baseline: False)
    method: str = METHODS[0]  # how the encoder was pre-trained (clmr.method)


def model_info(
    kind: str,
    name: str,
    shape: Shape,
    provenance: Provenance,
    labels: tuple[str, ...] = (),
    task: str = "",
) -> ModelInfo:
    """The metadata of one artifact, written by this clmr-embed version.

    clmr.trained follows clmr_embed.artifact.is_trained(sources, step, declared).
    """
    return ModelInfo(
        kind=kind,
        name=name,
        sample_rate=shape.sample_rate,
        window_samples=shape.window_samples,
        embedding_dim=shape.embedding_dim,
        labels=labels,
        task=task,
        licence=provenance.licence,
        source_sha256=provenance.source_sha256,
        version=__version__,
        trained=is_trained(provenance.sources, provenance.step, provenance.declared),
        description=provenance.description,
        architecture=shape.architecture,
        method=provenance.method,
    )

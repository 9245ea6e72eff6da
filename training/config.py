"""The shared model configs (encoder, projector, head) and the one dict/TOML round trip."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

from clmr_embed.constants import (
    CLMR_CHANNELS,
    CPC_FILTERS,
    CPC_PADDING,
    CPC_STRIDES,
    SAMPLE_RATE,
    WINDOW_SAMPLES,
)
from clmr_embed.errors import ConfigError


@dataclass(frozen=True)
class EncoderConfig:
    """SampleCNN shape; the defaults are CLMR's 22.05 kHz model."""

    channels: tuple[int, ...] = CLMR_CHANNELS  # output channels of blocks 0..10
    sample_rate: int = SAMPLE_RATE  # Hz the encoder was trained at
    window_samples: int = WINDOW_SAMPLES  # 3**10: eleven stride/pool-3 stages reduce it to length 1

    @property
    def embedding_dim(self) -> int:
        """Width of the flattened last block, i.e. the embedding size."""
        return self.channels[-1]

    def __post_init__(self) -> None:
        if len(self.channels) != 11:
            raise ConfigError(f"channels must list 11 block widths, got {len(self.channels)}")
        if self.window_samples != 3**10:
            raise ConfigError(f"window_samples must be 59049 (3**10), got {self.window_samples}")


@dataclass(frozen=True)
class CPCConfig:
    """CPC shape: strided Conv1d encoder -> GRU autoregressor; the defaults are CLMR v1's."""

    hidden_dim: int = 512  # Conv1d channels, the width of z
    context_dim: int = 256  # GRU units, the width of c and of the embedding (time-mean of c)
    prediction_steps: int = 12  # k: InfoNCE predicts z at t+1..t+k from c at t
    sample_rate: int = SAMPLE_RATE  # Hz the encoder was trained at
    window_samples: int = WINDOW_SAMPLES  # samples per training/embedding window

    @property
    def embedding_dim(self) -> int:
        """Width of the embedding: the GRU context, averaged over time."""
        return self.context_dim

    @property
    def frames(self) -> int:
        """Length of z (and c) for one window."""
        length = self.window_samples
        for stride, size, pad in zip(CPC_STRIDES, CPC_FILTERS, CPC_PADDING, strict=True):
            length = (length + 2 * pad - size) // stride + 1
        return length

    def __post_init__(self) -> None:
        if min(self.hidden_dim, self.context_dim, self.prediction_steps) <= 0:
            raise ConfigError("CPC hidden_dim, context_dim and prediction_steps must be > 0")
        if self.frames <= self.prediction_steps:
            raise ConfigError(
                f"a {self.window_samples}-sample window gives {self.frames} CPC frames, not more "
                f"than prediction_steps = {self.prediction_steps}; use a longer window"
            )


@dataclass(frozen=True)
class ProjectorConfig:
    """SimCLR projector: Linear(in, hidden, no bias) -> ReLU -> Linear(hidden, out, no bias)."""

    in_dim: int = 512  # encoder embedding size
    hidden_dim: int = 512  # CLMR v1: 512
    out_dim: int = 128  # CLMR v1 / released checkpoint: 128 (v2 used 64)


@dataclass(frozen=True)
class HeadConfig:
    """Classifier on frozen embeddings: Linear(in, n) or MLP in -> hidden ReLU -> n."""

    in_dim: int = 512  # embedding size
    n_labels: int = 50  # outputs (MTAT top-50 by default)
    hidden_dim: int = 0  # 0: linear head (keys 0.*); >0: MLP (keys 0.*, 2.*)
    task: str = "multilabel"  # "multilabel" (sigmoid) or "multiclass" (softmax)

    def __post_init__(self) -> None:
        if self.task not in ("multilabel", "multiclass"):
            raise ConfigError(f"task must be 'multilabel' or 'multiclass', got {self.task!r}")


T = TypeVar("T")


def config_from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build a config dataclass from a dict, rejecting unknown keys by name.

    Lists become tuples so frozen configs stay hashable.
    """
    valid = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - valid)
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} key(s) {unknown}; valid keys: {sorted(valid)}")
    clean = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return cls(**clean)


def config_to_dict(config: Any) -> dict[str, Any]:
    """A plain dict of a config dataclass (nested configs as dicts, tuples as lists).

    What checkpoints store and what TOML writes; `config_from_dict` reads it back.
    """
    plain: dict[str, Any] = _plain(dataclasses.asdict(config))
    return plain


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def load_toml(path: Path) -> dict[str, Any]:
    """Read a TOML config file; a syntax error names the file."""
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


__all__ = [
    "CLMR_CHANNELS",
    "CPCConfig",
    "EncoderConfig",
    "HeadConfig",
    "ProjectorConfig",
    "config_from_dict",
    "config_to_dict",
    "load_toml",
]

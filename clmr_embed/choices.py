"""The typed choices of a run (precision, engine, device, decoder) and the one engine table.

Every list of engines is derived from ENGINE_TABLE: the `--engine` choices (EngineName), which
engines run a precision and in what order (runs_on), the extra that installs each, the `models`
and docs tables. Adding an engine is one entry here plus its class (see docs/architecture.md).

A choice is validated once, where it enters (typer turns an option into one of these enums;
EngineConfig coerces and checks a string), and passed on as a value.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from clmr_embed.errors import ConfigError


class Precision(StrEnum):
    """The arithmetic the model runs in."""

    fp32 = "fp32"  # onnxruntime float32: the reference numbers
    bf16 = "bf16"  # OpenVINO's bfloat16 hint (the openvino extra)
    int8 = "int8"  # the model's int8 file, on whichever engine passed its check faster
    auto = "auto"  # the fastest path that passed its check on this machine


class Device(StrEnum):
    """Where onnxruntime runs; the low precisions are CPU paths."""

    auto = "auto"  # CUDA when this onnxruntime has it, else CPU
    cpu = "cpu"
    cuda = "cuda"


class Decoder(StrEnum):
    """Which library decodes audio files."""

    av = "av"  # PyAV / FFmpeg: every common format
    soundfile = "soundfile"  # libsndfile: wav, flac, aiff, ogg


@dataclass(frozen=True)
class EngineSpec:
    """One inference engine: everything the rest of the code needs to know about it."""

    name: str  # what --engine accepts and a store records
    extra: str  # pip install 'clmr-embed[EXTRA]' installs it
    package: str  # the Python package it imports (present: the engine is installed)
    # precision -> preference: among engines that run a precision, lower runs first
    precisions: dict[str, int] = field(default_factory=dict)
    # "module:Class" opening a model: Class(model, precision, EngineConfig) is an Engine, and
    # Class.library_version() names the engine library's version (checks are cached by it)
    opener: str = ""

    def engine_class(self) -> Any:
        """The engine's class, imported on first use (the CLI's --help imports no engine)."""
        module, _, name = self.opener.partition(":")
        return getattr(importlib.import_module(module), name)


ENGINE_TABLE: tuple[EngineSpec, ...] = (
    EngineSpec(
        name="onnxruntime",
        extra="cpu",
        package="onnxruntime",
        precisions={"fp32": 0, "int8": 1},
        opener="clmr_embed.engines.onnxruntime:OnnxRuntimeEngine",
    ),
    EngineSpec(
        name="openvino",
        extra="openvino",
        package="openvino",
        precisions={"fp32": 1, "bf16": 0, "int8": 0},
        opener="clmr_embed.engines.openvino:OpenVinoEngine",
    ),
)
ENGINES = tuple(spec.name for spec in ENGINE_TABLE)
# what --engine accepts (mypy cannot list members derived from the table)
EngineName = StrEnum("EngineName", [(name, name) for name in ENGINES])  # type: ignore[misc]
REFERENCE = ("onnxruntime", "fp32")  # the path every other one is checked against


def engine_spec(name: str) -> EngineSpec:
    """The table entry of engine `name`.

    Raises:
        ConfigError: no engine has that name (the message lists them).
    """
    for spec in ENGINE_TABLE:
        if spec.name == name:
            return spec
    raise ConfigError(f"unknown engine {name!r}; expected one of {list(ENGINES)}")


def runs_on(precision: str) -> tuple[str, ...]:
    """The engines that run `precision` (not "auto"), preferred first."""
    able = [spec for spec in ENGINE_TABLE if precision in spec.precisions]
    return tuple(spec.name for spec in sorted(able, key=lambda s: s.precisions[precision]))


def typed(kind: type[Any], value: object, what: str) -> Any:
    """`value` as a member of the StrEnum `kind`.

    Raises:
        ConfigError: `value` is none of its members (the message lists them).
    """
    try:
        return kind(value)
    except ValueError:
        raise ConfigError(
            f"{what} must be one of {[m.value for m in kind]}, got {value!r}"
        ) from None

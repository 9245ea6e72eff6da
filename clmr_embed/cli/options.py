"""Shared pieces of the CLI commands: option types and ranges, error handling, model lookup."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
import math
import os
import signal
import typing
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from clmr_embed.choices import Device, EngineName, Precision
from clmr_embed.constants import MAX_HOP_SECONDS
from clmr_embed.errors import ClmrEmbedError, MissingDependencyError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

F = TypeVar("F", bound=Callable[..., Any])
Opts = TypeVar("Opts", bound="DataclassInstance")  # a frozen options dataclass
R = TypeVar("R")

MAX_WORKERS = 4 * (os.cpu_count() or 1)  # decode processes beyond this only thrash
INTERRUPTED = 130  # exit code of a command stopped by Ctrl-C or SIGTERM (128 + SIGINT)


def _hop_seconds(value: float | None) -> float | None:
    if value is None:
        return None
    if not (value > 0 and math.isfinite(value)):  # NaN fails `> 0` too
        raise typer.BadParameter(f"must be a positive, finite number of seconds, got {value}")
    if value > MAX_HOP_SECONDS:
        raise typer.BadParameter(f"must be at most {MAX_HOP_SECONDS:g} s (one day), got {value:g}")
    return value


def _workers(value: str) -> int | None:
    """`--workers N|auto` (None: auto, clmr_embed.extract.config.auto_workers)."""
    if value == "auto":
        return None
    try:
        count = int(value)
    except ValueError:
        raise typer.BadParameter(f"a number of processes or 'auto', got {value!r}") from None
    if count < 0:
        raise typer.BadParameter(f"must be at least 0 (0: decode in-process), got {count}")
    if count > MAX_WORKERS:
        raise typer.BadParameter(
            f"at most {MAX_WORKERS} (4 per CPU, {os.cpu_count()} CPUs here), got {count}"
        )
    return count


def inputs_and_output(paths: list[Path], inputs: str) -> tuple[tuple[Path, ...], Path]:
    """Split `INPUT... OUT.h5` arguments (`inputs` names them in the usage error)."""
    if len(paths) < 2:
        raise typer.BadParameter(f"give at least one {inputs.lower()} and the output store: "
                                 f"{inputs}... OUT.h5")  # fmt: skip
    *given, output = paths
    if output.suffix.lower() not in (".h5", ".hdf5") or output.is_dir():
        raise typer.BadParameter(f"the last argument must be the output .h5 store, got {output}")
    return tuple(given), output


ModelOpt = Annotated[
    str | None,
    typer.Option("--model", "-m", help="Model name (see `clmr-embed models`) or .onnx path."),
]
DeviceOpt = Annotated[Device, typer.Option(help="auto (CUDA if available), cpu or cuda.")]
ThreadsOpt = Annotated[int, typer.Option(min=0, help="Engine threads; 0 = all cores.")]
PrecisionOpt = Annotated[
    Precision,
    typer.Option(help="fp32 (exact), bf16, int8, or auto: the fastest checked on this machine."),
]
EngineOpt = Annotated[
    EngineName | None,
    typer.Option("--engine", help="onnxruntime or openvino; default: the precision's choice."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]
HopOpt = Annotated[
    float | None,
    typer.Option(callback=_hop_seconds, help="Hop between windows (s); default: the window."),
]
LogFileOpt = Annotated[
    Path | None,
    typer.Option(
        dir_okay=False,
        help="Append the run's events (a track started or journaled, a checkpoint) to this file.",
    ),
]
WorkersOpt = Annotated[
    int | None,
    typer.Option(
        parser=_workers,
        metavar="N|auto",
        show_default="auto",
        help="Decode processes (0: in-process; auto: one per core, as memory allows).",
    ),
]


def options_command(options_type: type[Opts]) -> Callable[[Callable[[Opts], R]], Callable[..., R]]:
    """Make `body(options)` a typer command whose parameters are the options dataclass's fields.

    Typer reads a command's parameters from its signature; the command built here shows it the
    fields (their Annotated typer types and defaults) and calls `body(options_type(**values))`,
    so a command with many options takes one typed, frozen value instead of a long list.
    """
    hints = typing.get_type_hints(options_type, include_extras=True)
    empty = inspect.Parameter.empty
    parameters = [
        inspect.Parameter(
            field.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=empty if field.default is dataclasses.MISSING else field.default,
            annotation=hints[field.name],
        )
        for field in dataclasses.fields(options_type)
    ]

    def decorate(body: Callable[[Opts], R]) -> Callable[..., R]:
        @functools.wraps(body)
        def command(**values: Any) -> R:
            return body(options_type(**values))

        vars(command)["__signature__"] = inspect.Signature(parameters)
        command.__annotations__ = {p.name: p.annotation for p in parameters}
        return command

    return decorate


def handle_errors(func: F) -> F:
    """Turn ClmrEmbedError into one red line on stderr and exit 1, Ctrl-C into one and exit 130;
    warnings raised while the command runs print as one yellow line each.

    An interrupt whose exception says how many tracks were `kept` (extract's Interrupted) says
    so; the line never comes with a traceback. See `sigterm_as_interrupt` for SIGTERM.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from clmr_embed.cli.render import error, show_warning

        try:
            with warnings.catch_warnings():  # library warnings: one yellow line, no source line
                warnings.showwarning = show_warning
                return func(*args, **kwargs)
        except ClmrEmbedError as exc:
            error(str(exc))
            raise typer.Exit(1) from None
        except KeyboardInterrupt as exc:
            kept = getattr(exc, "kept", None)
            error(
                "interrupted"
                if kept is None
                else f"interrupted; {kept} tracks kept, rerun to continue"
            )
            raise typer.Exit(INTERRUPTED) from None

    return wrapper  # type: ignore[return-value]


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Inside, SIGTERM (kill, systemd, docker stop) stops the command as Ctrl-C does.

    Its workers are stopped and its finished work is kept. For extract and tag, not train:
    processes forked there inherit handlers, and must keep dying on SIGTERM.
    """

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread (an embedding application): leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def logging_to(path: Path | None) -> Iterator[None]:
    """Send the library's debug records (`clmr_embed.*` loggers) to `path`, a line each, at once.

    A line is written as its event happens (the handler flushes every record), so a reader of a
    pipe sees each event as soon as the run reached it.
    """
    if path is None:
        yield
        return
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("clmr_embed")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        handler.close()


def require(extra: str, command: str) -> None:
    """Fail with the install line when the extra's packages are missing."""
    modules = {"train": ("torch",), "export": ("torch",)}[extra]
    for module in modules:
        try:
            __import__(module)
        except ImportError:
            raise MissingDependencyError(
                f"clmr-embed {command} needs the {extra} extra ({module} is missing): "
                f"pip install 'clmr-embed[{extra}]'"
            ) from None


def check_engine_choice(precision: Precision, engine: EngineName | None, device: Device) -> None:
    """A precision/engine/device choice the engines refuse, or whose engine is not installed,
    is a usage error (exit 2) before any model loads; the message names the extra to install."""
    from clmr_embed.engines import EngineConfig
    from clmr_embed.engines.choice import require_installed
    from clmr_embed.errors import ConfigError

    try:
        require_installed(EngineConfig(precision, engine, device))
    except (ConfigError, MissingDependencyError) as exc:
        raise typer.BadParameter(str(exc)) from None


def resolve_or_fetch(model: str | None) -> str:
    """A model path for --model: clmr_embed.resolution, first-use work announced on stderr."""
    from rich.markup import escape

    from clmr_embed.cli.render import err
    from clmr_embed.resolution import resolve_model

    return str(resolve_model(model, notify=lambda line: err.print(escape(line), soft_wrap=True)))

"""Shared pieces of the CLI modules: error handling and common option types (imports stay light)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from clmr_embed.errors import ClmrEmbedError, MissingDependencyError

F = TypeVar("F", bound=Callable[..., Any])

ModelOpt = Annotated[
    str | None,
    typer.Option("--model", "-m", help="Model name (see `clmr-embed models`) or .onnx path."),
]
DeviceOpt = Annotated[str, typer.Option(help="auto (CUDA if available), cpu or cuda.")]
ThreadsOpt = Annotated[int, typer.Option(help="onnxruntime threads; 0 = all cores.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]


def handle_errors(func: F) -> F:
    """Turn ClmrEmbedError into one red line on stderr and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ClmrEmbedError as exc:
            from clmr_embed.cli.render import error

            error(str(exc))
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def require(extra: str, command: str) -> None:
    """Fail with the install line when the extra's packages are missing."""
    modules = {"train": ("torch",), "export": ("torch", "onnx", "onnxscript")}[extra]
    for module in modules:
        try:
            __import__(module)
        except ImportError:
            raise MissingDependencyError(
                f"clmr-embed {command} needs the {extra} extra ({module} is missing): "
                f"pip install 'clmr-embed[{extra}]'"
            ) from None

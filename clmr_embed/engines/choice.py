"""Which engine runs a precision (from choices.ENGINE_TABLE): open the path, validate it."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

from clmr_embed.choices import ENGINES, REFERENCE, Precision, engine_spec, runs_on
from clmr_embed.digest import ModelFile
from clmr_embed.engines.engine import Engine, EngineConfig, PrecisionError
from clmr_embed.engines.gate import Check, CheckResult, check_key, lookup, validate
from clmr_embed.engines.variant import int8_path
from clmr_embed.errors import MissingDependencyError

# precision -> the engines that run it, preferred first (derived from the engine table)
RUNS_ON = {p.value: runs_on(p) for p in Precision if p != "auto"}
Pair = tuple[str, str]  # (engine, precision)


def installed(engine: str) -> bool:
    """True when the engine's Python package can be imported."""
    return importlib.util.find_spec(engine_spec(engine).package) is not None


def engine_version(engine: str) -> str:
    """The installed engine library's version."""
    return str(engine_spec(engine).engine_class().library_version())


def _missing(engine: str) -> MissingDependencyError:
    return MissingDependencyError(
        f"engine {engine!r} is not installed; pip install 'clmr-embed[{engine_spec(engine).extra}]'"
    )


def require_installed(config: EngineConfig) -> None:
    """Refuse a (valid) choice whose engine is not installed, before anything loads.

    Raises:
        MissingDependencyError: the engine the choice needs is not installed (names the extra).
    """
    if config.engine is not None and not installed(config.engine):
        raise _missing(config.engine)
    needed = RUNS_ON.get(config.precision, ENGINES)
    if not any(installed(e) for e in needed):
        raise _missing(needed[0])


def check_choice(precision: str, engine: str | None = None, device: str = "auto") -> None:
    """Refuse an impossible precision/engine/device choice, or a missing engine, up front.

    Raises:
        ConfigError: an unknown value, or an engine or device that cannot run the precision.
        MissingDependencyError: the engine the choice needs is not installed (names the extra).
    """
    require_installed(EngineConfig(precision, engine, device))


def candidates(model: Path, precision: str, engine: str | None) -> list[Pair]:
    """The installed (engine, precision) paths a choice may take, preferred first.

    "auto" considers every pair whose files exist; an explicit "int8" keeps its pairs even
    without the int8 file, so that opening it explains how to build one.
    """
    precisions = ("fp32", "bf16", "int8") if precision == "auto" else (str(precision),)
    pairs = [
        (e, p)
        for p in precisions
        for e in RUNS_ON[p]
        if installed(e)
        and engine in (None, e)
        and (precision != "auto" or p != "int8" or int8_path(model).is_file())
    ]
    if precision == "fp32" and engine is None:
        return pairs[:1]  # fp32 means onnxruntime unless asked otherwise: today's numbers
    return pairs


def build(model: ModelFile, pair: Pair, config: EngineConfig) -> Engine:
    """Load `model` on one (engine, precision) path, unchecked."""
    engine, precision = pair
    opened: Engine = engine_spec(engine).engine_class()(model, precision, config)
    return opened


def _checked(model: ModelFile, pair: Pair, config: EngineConfig) -> tuple[Engine, CheckResult]:
    engine = build(model, pair, config)
    check = Check(reference=lambda: build(model, REFERENCE, config), requested=pair[1])
    return engine, validate(engine, check)


def _result(model: ModelFile, pair: Pair, config: EngineConfig) -> CheckResult | None:
    """A path's check result, from the cache or checked now (a failure is returned, not raised)."""
    key = check_key(model.sha256, pair[0], engine_version(pair[0]), pair[1])
    found = lookup(key)
    if found is None:
        try:
            found = _checked(model, pair, config)[1]
        except PrecisionError:
            found = lookup(key)  # validate cached the failure before raising
    return found


def fastest(model: ModelFile, pairs: list[Pair], config: EngineConfig) -> Pair:
    """The path with the highest checked speed among those that passed.

    Raises:
        PrecisionError: none passed.
    """
    results = {pair: _result(model, pair, config) for pair in pairs}
    passed = {pair: r for pair, r in results.items() if r is not None and r.passed}
    if not passed:
        failed = [r.refusal() for r in results.values() if r is not None]
        raise PrecisionError(failed[0] if failed else f"no path for {model.path} passed its check")
    return max(passed, key=lambda pair: passed[pair].windows_per_s)


def open_engine(model: ModelFile, config: EngineConfig | None = None) -> Engine:
    """Load `model` (an fp32 encoder or tagger file, hashed once) on the path `config` asks for.

    fp32 on onnxruntime is the reference and runs unchecked; every other path runs only after
    its first-use check against it on this machine passed (cached). "int8" without an engine
    and "auto" take the fastest path that passed.

    Raises:
        MissingDependencyError: the engine the choice needs is not installed.
        PrecisionError: the path (every candidate path) failed its check.
        ModelArtifactError: a missing or stale int8 file, or a file breaking the contract.
    """
    config = config or EngineConfig()  # validated when it was made
    require_installed(config)
    pairs = candidates(model.path, config.precision, config.engine)
    if not pairs:
        raise _missing(RUNS_ON.get(config.precision, ENGINES)[0])
    single = len(pairs) == 1 or not config.validate
    pair = pairs[0] if single else fastest(model, pairs, config)
    if pair == REFERENCE or not config.validate:
        engine = build(model, pair, config)
    else:
        engine = _checked(model, pair, config)[0]
    _warn_fallback(config.precision, engine)
    return engine


def _warn_fallback(requested: str, engine: Engine) -> None:
    """Say so when the engine runs another precision than the one asked for.

    OpenVINO's bf16 hint silently runs fp32 on a CPU without bf16; what runs is what a store
    records, and the caller should know it is not getting the speed it asked for.
    """
    if requested not in ("auto", engine.precision):
        warnings.warn(
            f"precision {str(requested)!r} was asked for, but {engine.engine} runs "
            f"{engine.precision} on this CPU ({engine.detail}); {engine.precision} is what "
            "runs and is recorded",
            stacklevel=3,
        )

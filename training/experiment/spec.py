"""An experiment spec (TOML) parsed and validated into frozen cells before any work starts."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clmr_embed.errors import ConfigError
from training.config import config_from_dict, config_to_dict, load_toml
from training.experiment.scale import SCALES, scaled_pretrain, tiny_files, tiny_probe
from training.linear.config import LinearEvalConfig
from training.pretrain.config import AugmentConfig, PretrainConfig, load_pretrain_config

# Augmentation names: AugmentConfig's `<name>_p` switches (polarity, noise, gain, filter, ...).
AUGMENTATIONS = tuple(k.removesuffix("_p") for k in vars(AugmentConfig()) if k.endswith("_p"))
SPEC_KEYS = ("title", "description", "columns", "plot_x", "data", "defaults", "cell")
CELL_KEYS: tuple[str, ...] = ("name", "kind", "config", "pretrain", "augmentations", "method")
CELL_KEYS += ("data", "probe", "label_fraction", "linear", "model")
NUMERIC_COLUMNS = ("label fraction", "batch size", "steps")  # may be a plot's x axis
COLUMNS = ("model", "kind", "pretrain data", "probe", "augmentations", *NUMERIC_COLUMNS)


@dataclass(frozen=True)
class KindRule:
    """What a cell kind takes from its spec (the runner registry in cells.py declares it)."""

    uses_encoder: bool  # the encoder shape (the resolved pretrain config) is part of the cell
    pretrains: bool  # the cell pre-trains, so it needs a pre-training corpus (`data`)
    names_model: bool = False  # the cell probes an existing model, named by its `model` key


@dataclass(frozen=True)
class SpecInputs:
    """What the command line adds to a spec file."""

    kinds: Mapping[str, KindRule]  # the registered cell kinds; any other kind is refused
    data: Mapping[str, tuple[Path, ...]] = field(default_factory=dict)  # --data NAME=PATH
    scale: str = "full"  # "full" (as written), "small" or "tiny" (training.experiment.scale)


@dataclass(frozen=True)
class Cell:
    """One row of the experiment: a (pre-training, probe) pair, fully resolved."""

    name: str  # the row's label in the report
    kind: str  # the runner registry key ("pretrain", "mfcc", "random", ...)
    pretrain: PretrainConfig | None  # resolved pre-training config (None: the kind has no encoder)
    data: tuple[Path, ...]  # pre-training inputs (empty unless the kind pre-trains)
    data_name: str  # the corpus's name in [data] ("" without pre-training)
    probe: Path  # the labelled probe set (manifest or folder, training.linear.labels)
    probe_name: str  # its name in [data]
    linear: LinearEvalConfig  # probe head and protocol, the cell's label_fraction included
    augmentations: tuple[str, ...] | None  # augmentations left on (None: the config's chain)
    model: str = ""  # an existing encoder to probe: a model name, .onnx or checkpoint path

    def resolved(self) -> dict[str, Any]:
        """Everything that decides the cell's scores (its name does not), as plain JSON values."""
        return {
            "kind": self.kind,
            "pretrain": config_to_dict(self.pretrain) if self.pretrain else None,
            "data": [str(p) for p in self.data],
            "probe": str(self.probe),
            "linear": config_to_dict(self.linear),
            **({"model": self.model} if self.model else {}),  # older cell keys stay valid
        }

    def key(self) -> str:
        """Hash of the resolved cell: its cache folder's name (RUN/cells/<key>)."""
        return digest(self.resolved())

    def pretrain_key(self) -> str:
        """Hash of the pre-training alone, so cells that differ only in the probe share it."""
        return digest({"pretrain": self.resolved()["pretrain"], "data": self.resolved()["data"]})


@dataclass(frozen=True)
class Spec:
    """A validated experiment."""

    path: Path  # the spec file
    title: str  # report heading
    description: str  # a paragraph under it
    columns: tuple[str, ...]  # table columns before the scores (from COLUMNS)
    plot_x: str  # a NUMERIC_COLUMNS entry for a line plot, "" for bars per cell
    scale: str  # "full", "small" or "tiny"
    cells: tuple[Cell, ...]  # in spec order, names unique


def digest(value: Any) -> str:
    """16 hex digits of the SHA-256 of `value` as canonical JSON."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _check_keys(table: Mapping[str, Any], valid: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(table) - set(valid))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; valid keys: {sorted(valid)}")


def _choice(value: Any, valid: tuple[str, ...], where: str) -> str:
    if value not in valid:
        raise ConfigError(f"{where} = {value!r}; use one of {list(valid)}")
    return str(value)


def load_spec(path: Path, inputs: SpecInputs) -> Spec:
    """Read, validate and resolve a spec; every error is one ConfigError naming key and fix.

    Raises:
        ConfigError: unknown key, kind, augmentation, column or data name; a missing data path;
            an empty grid; duplicate names; a bad pretrain or probe setting (its cell named).
    """
    path = Path(path)
    raw = load_toml(path)
    _check_keys(raw, SPEC_KEYS, str(path))
    _choice(inputs.scale, SCALES, "--scale")
    data = _data_table(raw.get("data", {}), path.parent, inputs.data)
    defaults = raw.get("defaults", {})
    _check_keys(defaults, CELL_KEYS, f"{path} [defaults]")
    rows = raw.get("cell", [])
    if not isinstance(rows, list) or not rows:
        raise ConfigError(f"{path}: the grid is empty; add at least one [[cell]] table")
    cells = tuple(
        _cell(_merged(defaults, row), f"{path} cell {i + 1}", path.parent, data, inputs)
        for i, row in enumerate(rows)
    )
    names = [c.name for c in cells]
    repeated = next((n for n in names if names.count(n) > 1), None)
    if repeated:
        raise ConfigError(f"{path}: cell name {repeated!r} repeats; give each cell its own name")
    columns = tuple(_choice(c, COLUMNS, f"{path} columns") for c in raw.get("columns", ["model"]))
    plot_x = raw.get("plot_x", "")
    if plot_x:
        _choice(plot_x, NUMERIC_COLUMNS, f"{path} plot_x")
    title, description = str(raw.get("title", path.stem)), str(raw.get("description", ""))
    return Spec(path, title, description, columns, plot_x, inputs.scale, cells)


def _merged(defaults: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    """A cell over [defaults]; its `pretrain` and `linear` tables add to the defaults' keys."""
    merged = defaults | row
    for table in ("pretrain", "linear"):
        if table in defaults and table in row:
            merged[table] = {**defaults[table], **row[table]}
    return merged


def _paths(value: Any, base: Path) -> tuple[Path, ...]:
    items = value if isinstance(value, list) else [value]
    return tuple((base / str(v)).resolve() for v in items)


def _data_table(
    table: Mapping[str, Any], base: Path, given: Mapping[str, tuple[Path, ...]]
) -> dict[str, tuple[Path, ...]]:
    """Corpus name -> paths: the spec's (relative to its folder), then --data NAME=PATH."""
    return {name: _paths(v, base) for name, v in table.items()} | {
        name: tuple(p.resolve() for p in paths) for name, paths in given.items()
    }


def _corpus(name: Any, data: Mapping[str, tuple[Path, ...]], where: str) -> tuple[Path, ...]:
    if not name:
        raise ConfigError(f"{where}: needs a {where.rsplit(' ', 1)[-1]!r} name from [data]")
    if name not in data:
        raise ConfigError(
            f"{where} = {name!r} is not in [data] (names: {sorted(data)}); "
            f"add it there or pass --data {name}=PATH"
        )
    missing = [p for p in data[name] if not p.exists()]
    if missing:
        raise ConfigError(
            f"{where}: data {name!r} path {missing[0]} does not exist; pass --data {name}=PATH"
        )
    return data[name]


def _cell(
    row: dict[str, Any],
    where: str,
    base: Path,
    data: Mapping[str, tuple[Path, ...]],
    inputs: SpecInputs,
) -> Cell:
    _check_keys(row, CELL_KEYS, where)
    where = f"{where} ({row['name']!r})" if "name" in row else where
    kind = _choice(row.get("kind"), tuple(inputs.kinds), f"{where} kind")
    rule = inputs.kinds[kind]
    augmentations = _augmentations(row.get("augmentations"), where)
    pretrain = None
    if rule.uses_encoder:
        pretrain = _pretrain(row, augmentations, base, where, inputs.scale)
    corpus: tuple[Path, ...] = ()
    if rule.pretrains:
        corpus = _corpus(row.get("data"), data, f"{where} data")
        corpus = tiny_files(corpus) if inputs.scale == "tiny" else corpus
    probe = _corpus(row.get("probe"), data, f"{where} probe")
    if len(probe) != 1:
        raise ConfigError(f"{where} probe: data {row['probe']!r} must be one labels path")
    linear = _linear(row, where, inputs.scale)
    if "model" in row and not rule.names_model:
        raise ConfigError(f"{where}: kind {kind!r} takes no `model`; use kind = 'model'")
    model = _model(row.get("model"), base, where) if rule.names_model else ""
    return Cell(
        name=str(row.get("name") or kind),
        kind=kind,
        pretrain=pretrain,
        data=corpus,
        data_name=str(row.get("data", "")) if rule.pretrains else "",
        probe=probe[0],
        probe_name=str(row["probe"]),
        linear=linear,
        augmentations=augmentations,
        model=model,
    )


def _model(value: Any, base: Path, where: str) -> str:
    """A model name as given; a path (it has a suffix or a slash) resolved against the spec."""
    if not value:
        raise ConfigError(f"{where}: needs a `model` (a model name, .onnx or checkpoint path)")
    text = str(value)
    if "/" not in text and not Path(text).suffix:
        return text  # a registered name; resolution reports an unknown one when the cell runs
    path = (base / text).resolve()
    if not path.exists():
        raise ConfigError(f"{where} model: {path} does not exist; fix the path in the spec")
    return str(path)


def _augmentations(value: Any, where: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    names = tuple(value) if isinstance(value, list) else (value,)
    for name in names:
        _choice(name, AUGMENTATIONS, f"{where} augmentations")
    return names


def _pretrain(
    row: dict[str, Any], augmentations: tuple[str, ...] | None, base: Path, where: str, scale: str
) -> PretrainConfig:
    """Base config file, the cell's overrides, its augmentation switches and `method`."""
    overrides = dict(row.get("pretrain", {}))
    if "method" in row:  # passed through: the pretrain config accepts or refuses it
        overrides["method"] = row["method"]
    for name in AUGMENTATIONS if augmentations is not None else ():
        if name not in (augmentations or ()):
            overrides[f"augment.{name}_p"] = 0.0
    config_file = base / row["config"] if row.get("config") else None
    try:
        config = load_pretrain_config(config_file, overrides)
        return scaled_pretrain(config, scale)
    except ConfigError as exc:
        raise ConfigError(f"{where} pretrain: {exc}") from None


def _linear(row: dict[str, Any], where: str, scale: str) -> LinearEvalConfig:
    settings = dict(row.get("linear", {}))
    if "label_fraction" in row:
        settings["label_fraction"] = row["label_fraction"]
    try:
        config = config_from_dict(LinearEvalConfig, settings)
        config.split_config()  # validates split mode and label fraction now, not mid-grid
    except (ConfigError, TypeError) as exc:
        raise ConfigError(f"{where} linear: {exc}") from None
    return tiny_probe(config) if scale == "tiny" else config

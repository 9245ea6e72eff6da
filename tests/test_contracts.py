"""The import-linter layers name every module and subpackage of clmr_embed, so none escapes."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNTIME_LAYERS = "Runtime layers inside clmr_embed"
NOT_LAYERED = {"__init__", "__main__"}  # the container itself; `python -m` -> cli


def _contracts() -> list[dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return config["tool"]["importlinter"]["contracts"]


def layered_names(contract: dict) -> set[str]:
    """The module names a layers contract lists ("a | b" siblings count one by one)."""
    return {name.strip() for layer in contract["layers"] for name in layer.split("|")}


def runtime_children(package: Path) -> set[str]:
    """The direct submodules and subpackages of a package folder."""
    modules = {p.stem for p in package.glob("*.py")}
    packages = {p.name for p in package.iterdir() if (p / "__init__.py").is_file()}
    return (modules | packages) - NOT_LAYERED


def test_every_runtime_subpackage_is_in_the_layers_contract() -> None:
    (contract,) = [c for c in _contracts() if c["name"] == RUNTIME_LAYERS]
    named = layered_names(contract)
    missing = runtime_children(ROOT / "clmr_embed") - named
    assert not missing, f"add {sorted(missing)} to the {RUNTIME_LAYERS!r} contract in pyproject"
    stale = named - runtime_children(ROOT / "clmr_embed")
    assert not stale, f"the {RUNTIME_LAYERS!r} contract names modules that are gone: {stale}"


def test_the_check_sees_a_new_subpackage(tmp_path: Path) -> None:
    (tmp_path / "fresh").mkdir()
    (tmp_path / "fresh" / "__init__.py").write_text("")
    (tmp_path / "plain.py").write_text("")
    (tmp_path / "__main__.py").write_text("")
    assert runtime_children(tmp_path) == {"fresh", "plain"}
    assert layered_names({"layers": ["cli", "a | b"]}) == {"cli", "a", "b"}

"""Packaging: every Python package folder is listed in pyproject (a missing one breaks wheels)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_is_listed() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("clmr_embed", "training", "export")
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert found == listed


def test_bundled_model_is_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["clmr_embed.models"]
    assert "*.onnx" in patterns
    assert (ROOT / "clmr_embed" / "models" / "clmr-free.onnx").is_file()

"""The shared configs: dicts out and back, unknown keys refused, TOML errors name the file."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from clmr_embed.errors import ConfigError
from training.config import (
    EncoderConfig,
    HeadConfig,
    config_from_dict,
    config_to_dict,
    load_toml,
)


@dataclass(frozen=True)
class _Outer:
    widths: tuple[int, ...] = (1, 2)
    head: HeadConfig = field(default_factory=HeadConfig)


def test_dicts_are_plain_and_read_back() -> None:
    data = config_to_dict(EncoderConfig())
    assert isinstance(data["channels"], list) and data["channels"][-1] == 512
    assert config_from_dict(EncoderConfig, data) == EncoderConfig()
    nested = config_to_dict(_Outer())
    assert nested == {"widths": [1, 2], "head": config_to_dict(HeadConfig())}


def test_unknown_keys_and_bad_values_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"unknown HeadConfig key\(s\) \['n_label'\]"):
        config_from_dict(HeadConfig, {"n_label": 3})
    with pytest.raises(ConfigError, match="task must be"):
        HeadConfig(task="regression")
    with pytest.raises(ConfigError, match="11 block widths"):
        config_from_dict(EncoderConfig, {"channels": [8, 8]})


def test_toml_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("batch_size = [\n")
    with pytest.raises(ConfigError, match=r"bad\.toml is not valid TOML"):
        load_toml(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_toml(tmp_path / "missing.toml")

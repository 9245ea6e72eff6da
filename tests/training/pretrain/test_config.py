"""Pre-training config: TOML and overrides in, unknown keys refused, the resolved TOML out."""

from dataclasses import replace
from pathlib import Path

import pytest

from clmr_embed.errors import ConfigError
from training.config import config_to_dict
from training.pretrain.config import load_pretrain_config, resume_conflicts, write_config

REPO = Path(__file__).resolve().parents[3]


def test_config_rejects_unknown_keys_and_reads_nested_augment(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text('batch_size = 16\noptimizer = "lars"\n[augment]\npitch_p = 0.0\n')
    config = load_pretrain_config(toml, {"augment.reverb_p": 0.1, "max_steps": 7})
    assert (config.batch_size, config.optimizer, config.max_steps) == (16, "lars", 7)
    assert (config.augment.pitch_p, config.augment.reverb_p) == (0.0, 0.1)
    with pytest.raises(ConfigError, match="batch_sise"):
        load_pretrain_config(None, {"batch_sise": 4})
    with pytest.raises(ConfigError, match="precision"):
        load_pretrain_config(None, {"precision": "int8"})
    with pytest.raises(ConfigError, match="augment.views must be 1 or 2"):
        load_pretrain_config(None, {"augment.views": 3})
    shipped = [load_pretrain_config(p) for p in sorted((REPO / "configs").glob("pretrain-*.toml"))]
    assert len(shipped) >= 2 and len(set(shipped)) == len(shipped)  # all differ


def test_resolved_config_reads_back_and_names_what_a_resume_may_not_change(tmp_path):
    config = load_pretrain_config(None, {"batch_size": 8, "augment.pitch_p": 0.1, "seed": 3})
    write_config(tmp_path / "config.toml", config)
    assert load_pretrain_config(tmp_path / "config.toml") == config
    saved = config_to_dict(config) | {"world_size": 1}
    later = replace(config, max_steps=99, device="cpu", precision="bf16")  # resumable settings
    assert resume_conflicts(saved, later, world=1) == []
    other = replace(config, seed=4, augment=replace(config.augment, gain_p=0.0))
    assert resume_conflicts(saved, other, world=2) == [
        "augment", "batch_size x world_size (the global batch)", "seed"
    ]  # fmt: skip
    old = saved | {"augment": {k: v for k, v in saved["augment"].items() if k != "views"}}
    assert resume_conflicts(old, config, world=1) == []  # a run saved before `views` existed
    one_view = replace(config, augment=replace(config.augment, views=1))
    assert resume_conflicts(old, one_view, world=1) == ["augment"]
    halves = replace(config, batch_size=4)  # two processes of 4: the same global batch of 8
    assert resume_conflicts(saved, halves, world=2) == []
    assert resume_conflicts(saved | {"world_size": 2}, config, world=1) == [
        "batch_size x world_size (the global batch)"
    ]


def test_contrastive_weight_zero_only_with_a_teacher(tmp_path):
    assert load_pretrain_config(None, {}).contrastive_weight == 1.0  # the CLMR recipe by default
    alone = load_pretrain_config(None, {"contrastive_weight": 0.0, "teacher": str(tmp_path)})
    assert alone.contrastive_weight == 0.0
    for bad in ({"contrastive_weight": 0.0}, {"contrastive_weight": -1.0}):
        with pytest.raises(ConfigError, match="contrastive_weight"):
            load_pretrain_config(None, bad)

"""The learning-rate schedule: linear warm-up, cosine to the floor, constant."""

import math

import pytest

from clmr_embed.errors import ConfigError
from training.pretrain.schedule import lr_at


def test_lr_schedule_warms_up_linearly_then_decays_to_the_cosine_floor():
    lrs = [lr_at(s, 1.0, warmup_steps=4, total_steps=14, min_lr_ratio=0.1) for s in range(16)]
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert lrs[4] == pytest.approx(1.0)
    assert lrs[9] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 5 / 9)))
    assert lrs[13] == pytest.approx(0.1) and lrs[15] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(lrs[3:], lrs[4:], strict=False))
    assert lr_at(100, 3e-4, 0, 10, schedule="constant") == 3e-4
    with pytest.raises(ConfigError, match="linear"):
        lr_at(0, 1.0, 0, 10, schedule="linear")

"""LARS: BatchNorm and biases excluded from decay and adaptation; the trust-ratio step."""

import pytest

torch = pytest.importorskip("torch")

from tests.fixtures.pretrain import TINY
from training.config import EncoderConfig
from training.pretrain.lars import LARS, decay_groups
from training.samplecnn import SampleCNN


def test_lars_groups_exclude_batchnorm_and_biases():
    model = SampleCNN(EncoderConfig(channels=tuple(TINY)))
    decayed, excluded = decay_groups(model, 1e-6)
    assert all(p.ndim == 3 for p in decayed["params"]) and len(decayed["params"]) == 11
    assert excluded["weight_decay"] == 0.0 and excluded["lars_exclude"]
    assert len(excluded["params"]) == 33  # conv bias, BN weight, BN bias per block
    weight = torch.nn.Parameter(torch.ones(4, 4))
    optimizer = LARS([weight], lr=1.0, trust_coefficient=0.01)
    weight.grad = torch.full((4, 4), 100.0)
    optimizer.step()  # trust ratio 0.01 * ||w|| / ||g|| = 1e-4 -> step 0.01 per entry
    assert torch.allclose(weight, torch.full((4, 4), 0.99))

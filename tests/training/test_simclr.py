"""Tests for training.simclr: NT-Xent against a hand computation, group masking, SimCLR module."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from clmr_embed.errors import ConfigError  # noqa: E402
from training.config import EncoderConfig, ProjectorConfig  # noqa: E402
from training.samplecnn import Projector, SampleCNN  # noqa: E402
from training.simclr import SimCLR, nt_xent_loss  # noqa: E402


def _cos(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def _hand_nt_xent(z_i, z_j, tau, groups=None) -> float:
    """NT-Xent written out with loops: -log(exp(s_pos) / sum over allowed k != a of exp(s_ak))."""
    z = z_i + z_j
    n = len(z_i)
    ids = None if groups is None else groups + groups
    total = 0.0
    for a in range(2 * n):
        pos = (a + n) % (2 * n)
        denom = 0.0
        for k in range(2 * n):
            if k == a:
                continue
            if ids is not None and k != pos and ids[k] == ids[a]:
                continue
            denom += math.exp(_cos(z[a], z[k]) / tau)
        total += -math.log(math.exp(_cos(z[a], z[pos]) / tau) / denom)
    return total / (2 * n)


Z_I = [[1.0, 0.0, 2.0], [0.5, -1.0, 0.0], [0.0, 3.0, 1.0]]
Z_J = [[0.8, 0.3, 1.5], [1.0, -2.0, 0.5], [-1.0, 2.0, 0.0]]


@pytest.mark.parametrize("tau", [0.5, 0.1, 1.0])
def test_nt_xent_matches_hand_computation(tau: float) -> None:
    z_i, z_j = torch.tensor(Z_I, dtype=torch.float64), torch.tensor(Z_J, dtype=torch.float64)
    got = nt_xent_loss(z_i, z_j, tau)
    assert got.item() == pytest.approx(_hand_nt_xent(Z_I, Z_J, tau), rel=1e-10)


def test_nt_xent_ignores_scale_of_projections() -> None:
    z_i, z_j = torch.tensor(Z_I), torch.tensor(Z_J)
    assert torch.allclose(nt_xent_loss(z_i, z_j), nt_xent_loss(3 * z_i, 0.1 * z_j), atol=1e-6)


def test_identical_views_give_lower_loss_than_random_views() -> None:
    g = torch.Generator().manual_seed(0)
    z = torch.randn(16, 32, generator=g)
    identical = nt_xent_loss(z, z.clone())
    unrelated = nt_xent_loss(z, torch.randn(16, 32, generator=g))
    assert identical < unrelated - 0.5
    # Even perfect positives keep the negatives in the denominator, so the loss stays above 0.
    assert identical > 0


def test_same_group_masks_negatives_as_hand_computation() -> None:
    groups = [7, 7, 3]
    got = nt_xent_loss(
        torch.tensor(Z_I, dtype=torch.float64),
        torch.tensor(Z_J, dtype=torch.float64),
        0.5,
        same_group=torch.tensor(groups),
    )
    expected = _hand_nt_xent(Z_I, Z_J, 0.5, groups)
    assert got.item() == pytest.approx(expected, rel=1e-10)
    assert got.item() != pytest.approx(_hand_nt_xent(Z_I, Z_J, 0.5), rel=1e-3)


def test_same_group_with_unique_ids_changes_nothing_and_masking_lowers_loss() -> None:
    g = torch.Generator().manual_seed(1)
    z_i, z_j = torch.randn(8, 16, generator=g), torch.randn(8, 16, generator=g)
    plain = nt_xent_loss(z_i, z_j)
    assert torch.allclose(nt_xent_loss(z_i, z_j, same_group=torch.arange(8)), plain)
    # Removing denominator terms can only lower each anchor's loss.
    one_track = nt_xent_loss(z_i, z_j, same_group=torch.zeros(8, dtype=torch.long))
    assert one_track < plain
    # All in one group: only the positive remains per anchor, so the loss is exactly 0.
    assert one_track.item() == pytest.approx(0.0)


def test_nt_xent_rejects_bad_input() -> None:
    with pytest.raises(ConfigError, match="temperature"):
        nt_xent_loss(torch.ones(2, 3), torch.ones(2, 3), temperature=0.0)
    with pytest.raises(ConfigError, match="z_i and z_j"):
        nt_xent_loss(torch.ones(2, 3), torch.ones(3, 3))
    with pytest.raises(ConfigError, match="same_group"):
        nt_xent_loss(torch.ones(2, 3), torch.ones(2, 3), same_group=torch.zeros(3))


def test_nt_xent_gradient_flows() -> None:
    z_i = torch.randn(4, 8, requires_grad=True)
    z_j = torch.randn(4, 8, requires_grad=True)
    nt_xent_loss(z_i, z_j).backward()
    assert z_i.grad is not None and z_i.grad.abs().sum() > 0


def test_simclr_forward_shapes() -> None:
    channels = (4, 4, 4, 4, 4, 4, 4, 4, 4, 8, 8)
    encoder = SampleCNN(EncoderConfig(channels=channels))
    model = SimCLR(encoder, Projector(ProjectorConfig(in_dim=8, hidden_dim=8, out_dim=3)))
    x_i, x_j = torch.randn(2, 1, 59049), torch.randn(2, 1, 59049)
    h_i, h_j, z_i, z_j = model(x_i, x_j)
    assert h_i.shape == h_j.shape == (2, 8)
    assert z_i.shape == z_j.shape == (2, 3)
    assert not torch.allclose(z_i, z_j)
    default = SimCLR(encoder)  # projector sized from the encoder
    assert default(x_i, x_j)[2].shape == (2, ProjectorConfig().out_dim)

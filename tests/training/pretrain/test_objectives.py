"""NT-Xent against a hand computation, group masking, SimCLR, and NT-Xent over two gloo ranks."""

from __future__ import annotations

import math
import os
import socket
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import torch.distributed as dist
import torch.multiprocessing as mp

from clmr_embed.errors import ConfigError
from training.config import EncoderConfig, ProjectorConfig
from training.pretrain.distributed import (
    is_distributed,
    is_main,
    setup_from_env,
    teardown,
)
from training.pretrain.objectives import (
    SimCLR,
    gather_with_grad,
    global_nt_xent,
    nt_xent_loss,
)
from training.samplecnn import Projector, SampleCNN


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


def test_single_process_gather_and_global_loss_are_local() -> None:
    x = torch.randn(3, 4)
    assert gather_with_grad(x) is x
    z_i, z_j = torch.randn(4, 8), torch.randn(4, 8)
    assert torch.equal(global_nt_xent(z_i, z_j), nt_xent_loss(z_i, z_j))


# --- NT-Xent over two gloo ranks -----------------------------------------------------------------

WORLD = 2
N_LOCAL = 3


def _data() -> tuple:
    g = torch.Generator().manual_seed(0)
    x_i = torch.randn(WORLD * N_LOCAL, 5, generator=g, dtype=torch.float64)
    x_j = torch.randn(WORLD * N_LOCAL, 5, generator=g, dtype=torch.float64)
    weight = torch.randn(4, 5, generator=g, dtype=torch.float64)
    groups = torch.tensor([0, 1, 2, 2, 4, 0])  # track 0 and 2 span both ranks
    return x_i, x_j, weight, groups


def _reference(same_group: bool) -> tuple:
    """Single process: loss, dL/dz_i, dL/dz_j and dL/dW on the whole batch."""
    x_i, x_j, weight, groups = _data()
    weight = weight.clone().requires_grad_(True)
    z_i, z_j = x_i @ weight.T, x_j @ weight.T
    z_i.retain_grad()
    z_j.retain_grad()
    loss = nt_xent_loss(z_i, z_j, 0.5, groups if same_group else None)
    loss.backward()
    return loss.detach(), z_i.grad, z_j.grad, weight.grad


def _worker(local_rank: int, port: int, out_dir: str) -> None:
    env = {"RANK": str(local_rank), "WORLD_SIZE": str(WORLD), "LOCAL_RANK": str(local_rank)}
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    r, w, lr = setup_from_env("gloo", env)
    assert (r, w, lr) == (local_rank, WORLD, local_rank)
    assert is_distributed() and is_main() == (r == 0)
    for same_group in (False, True):
        _rank_step(r, same_group, Path(out_dir) / f"rank{r}_{same_group}.pt")
    teardown()


def _rank_step(r: int, same_group: bool, out: Path) -> None:
    x_i, x_j, weight, groups = _data()
    rows = slice(r * N_LOCAL, (r + 1) * N_LOCAL)
    weight = weight.clone().requires_grad_(True)  # a parameter replicated on every rank, as in DDP
    z_i, z_j = x_i[rows] @ weight.T, x_j[rows] @ weight.T
    z_i.retain_grad()
    z_j.retain_grad()
    loss = global_nt_xent(z_i, z_j, 0.5, groups[rows] if same_group else None)
    loss.backward()
    grad_w = weight.grad.clone()
    dist.all_reduce(grad_w)  # DDP: average the parameter gradients over ranks
    grad_w /= WORLD
    torch.save({"loss": loss.detach(), "gz_i": z_i.grad, "gz_j": z_j.grad, "gw": grad_w}, out)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow  # spawns two processes
def test_global_loss_and_gradients_match_single_process(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    for same_group, r in [(False, 0), (False, 1), (True, 0), (True, 1)]:
        loss, gz_i, gz_j, gw = _reference(same_group)
        got = torch.load(tmp_path / f"rank{r}_{same_group}.pt")
        rows = slice(r * N_LOCAL, (r + 1) * N_LOCAL)
        assert torch.allclose(got["loss"], loss, rtol=1e-12)
        # Backward through the gather sums the W ranks' identical gradients: W x the true slice.
        assert torch.allclose(got["gz_i"] / WORLD, gz_i[rows], rtol=1e-10, atol=1e-14)
        assert torch.allclose(got["gz_j"] / WORLD, gz_j[rows], rtol=1e-10, atol=1e-14)
        # After DDP's averaging the parameter gradient is exactly the single-process one.
        assert torch.allclose(got["gw"], gw, rtol=1e-10, atol=1e-14)

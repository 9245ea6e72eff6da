"""Tests for training.distributed: 2 gloo ranks reproduce the single-process loss and gradients."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402

from clmr_embed.errors import ConfigError  # noqa: E402
from training import distributed  # noqa: E402
from training.simclr import nt_xent_loss  # noqa: E402

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
    r, w, lr = distributed.setup_from_env("gloo", env)
    assert (r, w, lr) == (local_rank, WORLD, local_rank)
    assert distributed.is_distributed() and distributed.is_main() == (r == 0)
    for same_group in (False, True):
        _rank_step(r, same_group, Path(out_dir) / f"rank{r}_{same_group}.pt")
    distributed.teardown()


def _rank_step(r: int, same_group: bool, out: Path) -> None:
    x_i, x_j, weight, groups = _data()
    rows = slice(r * N_LOCAL, (r + 1) * N_LOCAL)
    weight = weight.clone().requires_grad_(True)  # a parameter replicated on every rank, as in DDP
    z_i, z_j = x_i[rows] @ weight.T, x_j[rows] @ weight.T
    z_i.retain_grad()
    z_j.retain_grad()
    loss = distributed.global_nt_xent(z_i, z_j, 0.5, groups[rows] if same_group else None)
    loss.backward()
    grad_w = weight.grad.clone()
    dist.all_reduce(grad_w)  # DDP: average the parameter gradients over ranks
    grad_w /= WORLD
    torch.save({"loss": loss.detach(), "gz_i": z_i.grad, "gz_j": z_j.grad, "gw": grad_w}, out)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


def test_single_process_fallbacks() -> None:
    assert not distributed.is_distributed()
    assert (distributed.rank(), distributed.world_size(), distributed.is_main()) == (0, 1, True)
    x = torch.randn(3, 4)
    assert distributed.gather_with_grad(x) is x
    z_i, z_j = torch.randn(4, 8), torch.randn(4, 8)
    assert torch.equal(distributed.global_nt_xent(z_i, z_j), nt_xent_loss(z_i, z_j))
    assert distributed.setup_from_env("gloo", {}) == (0, 1, 0)


def test_setup_from_env_rejects_missing_rank() -> None:
    with pytest.raises(ConfigError, match="RANK"):
        distributed.setup_from_env("gloo", {"WORLD_SIZE": "2"})

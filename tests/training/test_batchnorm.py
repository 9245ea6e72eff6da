"""GlobalBatchNorm1d over two gloo ranks equals one process's BatchNorm1d on the whole batch."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import torch.distributed as dist
import torch.multiprocessing as mp
from torch import Tensor, nn

from training.batchnorm import GlobalBatchNorm1d, convert_global_batchnorm
from training.pretrain.distributed import setup_from_env, teardown

WORLD, N_LOCAL = 2, 3


def _model() -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(1, 4, 3), nn.BatchNorm1d(4), nn.ReLU(), nn.Conv1d(4, 2, 3))
    norm = model[1]
    assert isinstance(norm, nn.BatchNorm1d)
    with torch.no_grad():  # a non-trivial affine part, so its gradients are tested too
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-0.5, 0.5)
    return model


def _batch() -> Tensor:
    g = torch.Generator().manual_seed(1)
    return 3.0 + 2.0 * torch.randn(WORLD * N_LOCAL, 1, 40, generator=g)


def _loss(model: nn.Module, x: Tensor) -> Tensor:
    """A per-example loss, averaged: each rank's share of the global mean is its local mean."""
    return (model(x) ** 2).mean()


def _worker(rank: int, port: int, out_dir: str) -> None:
    env = {"RANK": str(rank), "WORLD_SIZE": str(WORLD), "LOCAL_RANK": str(rank)}
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    setup_from_env("gloo", env)
    model = convert_global_batchnorm(_model())
    assert isinstance(model[1], GlobalBatchNorm1d) and model[1].synced()
    x = _batch()[rank * N_LOCAL : (rank + 1) * N_LOCAL]
    _loss(model, x).backward()
    grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    for grad in grads:  # DDP's averaging of the parameter gradients
        dist.all_reduce(grad)
        grad /= WORLD
    out = model[:2](x).detach()
    state = {k: v.clone() for k, v in model[1].state_dict().items()}
    torch.save({"grads": grads, "normed": out, "state": state}, Path(out_dir) / f"r{rank}.pt")
    teardown()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow  # spawns two processes
def test_two_ranks_normalise_and_differentiate_as_one_process(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    reference = _model()
    _loss(reference, _batch()).backward()
    # the second forward (normed) moved the statistics once more, on both sides
    normed = reference[:2](_batch()).detach()
    for rank in range(WORLD):
        got = torch.load(tmp_path / f"r{rank}.pt")
        rows = slice(rank * N_LOCAL, (rank + 1) * N_LOCAL)
        assert torch.allclose(got["normed"], normed[rows], atol=1e-5)
        for mine, want in zip(got["grads"], reference.parameters(), strict=True):
            assert torch.allclose(mine, want.grad, rtol=1e-4, atol=1e-6)
        for key, value in reference[1].state_dict().items():
            assert torch.allclose(got["state"][key].float(), value.float(), rtol=1e-5), key


def test_outside_a_process_group_it_is_batchnorm1d() -> None:
    plain, converted = _model(), convert_global_batchnorm(_model())
    assert isinstance(converted[1], GlobalBatchNorm1d) and not converted[1].synced()
    assert converted.state_dict().keys() == plain.state_dict().keys()
    assert torch.equal(converted(_batch()), plain(_batch()))

"""BatchNorm over the global batch for CPU processes (gloo), where torch's SyncBatchNorm refuses."""

from __future__ import annotations

from typing import TypeVar

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn
from torch import Tensor, nn

M = TypeVar("M", bound=nn.Module)


class GlobalBatchNorm1d(nn.BatchNorm1d):
    """nn.BatchNorm1d whose training statistics are those of every process's batch together.

    Run at any world size with the same global batch, a step then normalises exactly as one
    process would (to float rounding), which is what lets a run resume at another world size
    and continue as if it had never changed. Outside a process group of > 1 ranks, or in eval
    mode, it is nn.BatchNorm1d. Same parameters, buffers and state-dict keys.
    """

    def forward(self, input: Tensor) -> Tensor:
        """Normalise (N, C, ...) input by the global batch's statistics while training."""
        return global_batch_norm(self, input) if self.synced() else super().forward(input)

    def synced(self) -> bool:
        """True when this forward normalises by the global batch (training, > 1 ranks)."""
        return (
            self.training
            and dist.is_available()
            and dist.is_initialized()
            and (dist.get_world_size() > 1)
        )


def global_batch_norm(norm: nn.BatchNorm1d, x: Tensor) -> Tensor:
    """`norm` applied to x (N, C, ...) with the mean and variance of all ranks' x, in fp32.

    Two all-reduces (the mean, then the centred squares: no E[x^2] - E[x]^2 cancellation); both
    are differentiable, so each rank's backward sums every rank's gradient of the statistics.
    The running statistics move as nn.BatchNorm1d's do (unbiased variance, `momentum`).
    """
    dims = [d for d in range(x.dim()) if d != 1]
    shape = [1, x.shape[1]] + [1] * (x.dim() - 2)
    xf = x.float()
    count = xf.numel() // xf.shape[1] * dist.get_world_size()
    mean = dist_fn.all_reduce(xf.sum(dims)) / count
    centred = xf - mean.view(shape)
    var = dist_fn.all_reduce((centred * centred).sum(dims)) / count
    if norm.track_running_stats and norm.running_mean is not None:
        _track(norm, mean.detach(), var.detach() * count / max(count - 1, 1))
    y = centred * torch.rsqrt(var.view(shape) + norm.eps)
    if norm.affine:
        y = y * norm.weight.view(shape) + norm.bias.view(shape)
    out: Tensor = y.to(x.dtype)
    return out


def convert_global_batchnorm(model: M) -> M:
    """`model` with each nn.BatchNorm1d inside it replaced by a GlobalBatchNorm1d (same tensors)."""
    for name, child in model.named_children():
        model.add_module(name, _converted(child))
    return model


def _converted(module: nn.Module) -> nn.Module:
    if type(module) is not nn.BatchNorm1d:
        return convert_global_batchnorm(module)
    norm = GlobalBatchNorm1d(
        module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats
    )
    norm.load_state_dict(module.state_dict())
    return norm.train(module.training)


def _track(norm: nn.BatchNorm1d, mean: Tensor, unbiased_var: Tensor) -> None:
    assert norm.running_mean is not None and norm.running_var is not None
    assert norm.num_batches_tracked is not None
    norm.num_batches_tracked.add_(1)
    factor = norm.momentum if norm.momentum is not None else 1.0 / float(norm.num_batches_tracked)
    with torch.no_grad():
        norm.running_mean.lerp_(mean.to(norm.running_mean.dtype), factor)
        norm.running_var.lerp_(unbiased_var.to(norm.running_var.dtype), factor)

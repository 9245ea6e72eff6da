"""LARS (You et al. 2017) as in SimCLR, with BatchNorm and bias parameters excluded for real."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn


def decay_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Split parameters into a decayed/adapted group and an excluded one (BN and biases).

    CLMR's pip LARS listed these exclusions but ignored them (clmr-reference.md §4.2); here the
    second group really gets no weight decay and, under LARS, no trust-ratio adaptation.
    Weights of conv and linear layers have ndim >= 2; BN weights and every bias have ndim 1.

    Returns:
        Two optimiser param groups: {"params", "weight_decay", "lars_exclude"}.
    """
    decayed = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    excluded = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    return [
        {"params": decayed, "weight_decay": weight_decay, "lars_exclude": False},
        {"params": excluded, "weight_decay": 0.0, "lars_exclude": True},
    ]


class LARS(torch.optim.Optimizer):
    """SGD with momentum whose per-layer step is scaled by the trust ratio ||w|| / ||g + wd·w||.

    Groups flagged `lars_exclude` (see `decay_groups`) take plain momentum SGD steps. No
    `.item()` calls: the trust ratio stays on the device, so steps do not synchronise on GPU.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        trust_coefficient: float = 0.001,
    ) -> None:
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "weight_decay": weight_decay,
            "trust_coefficient": trust_coefficient,
            "lars_exclude": False,
        }
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:  # torch's Optimizer.step contract
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                update = p.grad.add(p, alpha=group["weight_decay"])
                if not group["lars_exclude"]:
                    update = update.mul(_trust_ratio(p, update, group["trust_coefficient"]))
                buf = self.state[p].get("momentum_buffer")
                if buf is None:
                    buf = self.state[p]["momentum_buffer"] = update.clone()
                else:
                    buf.mul_(group["momentum"]).add_(update)
                p.add_(buf, alpha=-group["lr"])
        return loss


def _trust_ratio(p: torch.Tensor, update: torch.Tensor, coefficient: float) -> torch.Tensor:
    # A zero norm (fresh zero init, or no gradient signal) falls back to an unscaled step.
    w_norm, u_norm = torch.linalg.vector_norm(p), torch.linalg.vector_norm(update)
    ratio = coefficient * w_norm / u_norm
    return torch.where((w_norm > 0) & (u_norm > 0), ratio, torch.ones_like(ratio))


__all__ = ["LARS", "decay_groups"]

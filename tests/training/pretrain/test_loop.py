"""The step loop's pieces: the frozen encoder outside the backward, the one-view mode."""

from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")

from torch import nn

from training.pretrain.config import load_pretrain_config
from training.pretrain.loop import augmented_views, without_grad


def test_a_module_without_grad_is_left_out_of_the_backward_and_restored_after():
    encoder, head = nn.Linear(4, 3), nn.Linear(3, 2)
    encoder.bias.requires_grad_(False)  # already frozen: must stay so afterwards
    x = torch.randn(5, 4)

    with without_grad(encoder):
        features = encoder(x)
        head(features).square().sum().backward()
    assert not features.requires_grad  # the graph, and so the backward, starts at the head
    assert encoder.weight.grad is None and head.weight.grad is not None
    assert encoder.weight.requires_grad and not encoder.bias.requires_grad

    features = encoder(x)
    head(features).square().sum().backward()
    assert features.requires_grad and encoder.weight.grad is not None  # outside, it learns again


@pytest.mark.parametrize("views", [1, 2])
def test_one_view_mode_leaves_the_second_view_clean(views):
    config = load_pretrain_config(None, {"augment.views": views})
    loop = SimpleNamespace(
        processes=SimpleNamespace(device=torch.device("cpu"), rank=0, world=1),
        parts=SimpleNamespace(state=SimpleNamespace(step=3)),
        config=config,
        augment=lambda x, generator, rows: -x,  # stands for the chain: any change shows
    )
    batch = {"x_i": torch.rand(2, 1, 16), "x_j": torch.rand(2, 1, 16)}
    x_i, x_j = augmented_views(loop, batch)  # type: ignore[arg-type]
    assert torch.equal(x_i, -batch["x_i"])
    assert torch.equal(x_j, batch["x_j"] if views == 1 else -batch["x_j"])

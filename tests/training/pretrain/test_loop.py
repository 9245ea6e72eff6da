"""The step loop's pieces: a frozen encoder stays outside the backward during the head warm-up."""

import pytest

torch = pytest.importorskip("torch")

from torch import nn

from training.pretrain.loop import without_grad


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

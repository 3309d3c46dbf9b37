"""The CPU dropout keeps nn.Dropout's semantics: rate, scaling, gradient, eval identity."""
import torch

from brainfm.models.dropout import Dropout


def test_rate_scale_and_gradient():
    torch.manual_seed(0)
    drop = Dropout(0.1).train()
    x = torch.ones(2000, 500, requires_grad=True)
    y = drop(x)
    dropped = (y == 0).float().mean().item()
    assert abs(dropped - 0.1) < 0.002
    assert torch.allclose(y[y != 0], torch.full_like(y[y != 0], 1 / 0.9))
    y.sum().backward()
    assert torch.equal(x.grad, (y != 0).float() / 0.9)          # same mask, same scale


def test_masks_are_fresh_and_eval_is_identity():
    drop = Dropout(0.5).train()
    x = torch.ones(100, 100)
    assert not torch.equal(drop(x), drop(x))
    assert torch.equal(drop.eval()(x), x)
    assert torch.equal(Dropout(0.0).train()(x), x)


def test_rate_of_every_element_position_is_uniform():
    """Four 16-bit draws come from each 64-bit word: no position within a word is biased."""
    torch.manual_seed(1)
    drop = Dropout(0.25).train()
    hits = torch.zeros(4)
    for _ in range(20):
        y = drop(torch.ones(100_000, 4))
        hits += (y == 0).float().mean(dim=0)
    assert torch.allclose(hits / 20, torch.full((4,), 0.25), atol=0.005)

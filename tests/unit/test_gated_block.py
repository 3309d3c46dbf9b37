"""GatedS4DBlock gates in the convolution's (M, 2d, L) layout and projects with a hand-written
backward pass (GateProject); it must equal the block written with plain Linear layers on
(M, L, d), values and gradients."""
from __future__ import annotations

import pytest
import torch

from brainfm.models.diffusion_denoiser import GatedS4DBlock


def _plain(block: GatedS4DBlock, x, cond):
    h = block.ssm(block.norm(x) + block.cond(cond), linear=block.expand)
    gate, filt = h.chunk(2, dim=-1)
    gate = torch.sigmoid(gate)
    inter = gate * torch.tanh(filt)
    nxt = None if block.residual is None else block.residual(inter) + x
    return nxt, block.skip(inter), gate


@pytest.mark.parametrize("is_last", [False, True])
def test_block_equals_plain_linear_layers(is_last):
    torch.manual_seed(5)
    block = GatedS4DBlock(d_model=8, d_cond=6, d_state=4, is_last=is_last)
    with torch.no_grad():  # the conditioning Linear starts at zero: exercise it
        block.cond.weight.normal_()
    x = torch.randn(3, 50, 8, requires_grad=True)
    cond = torch.randn(3, 1, 6)
    params = [x] + list(block.parameters())
    results = []
    for fn in (block, lambda a, c: _plain(block, a, c)):
        nxt, skip, gate = fn(x, cond)
        loss = skip.square().sum() + (0 if nxt is None else nxt.square().sum()) \
            + gate.square().sum()  # a loss on the latents trains the backbone too
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        results.append([skip, gate] + ([] if nxt is None else [nxt]) + list(grads))
    assert results[0][1].shape == (3, 50, 8)                          # gate (M, L, d)
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5 * b.abs().max().item())


def test_gate_project_gradcheck():
    """Float64 finite differences of the hand-written backward, with and without the
    residual projection (the last block has none)."""
    from brainfm.models.diffusion_denoiser import GateProject

    g = torch.Generator().manual_seed(6)

    def rand(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64, requires_grad=True)
    h, x = rand(2, 6, 5), rand(2, 5, 3)
    w_r, b_r, w_s, b_s = rand(3, 3), rand(3), rand(3, 3), rand(3)
    assert torch.autograd.gradcheck(lambda *a: GateProject.apply(*a)[:2],
                                    (h, x, w_r, b_r, w_s, b_s))
    assert torch.autograd.gradcheck(lambda h_, w, b: GateProject.apply(h_, x, None, None, w, b)[1],
                                    (h, w_s, b_s))
    # the gate is an output too (the latents): gradients through it, alone or with the others
    assert torch.autograd.gradcheck(lambda *a: GateProject.apply(*a), (h, x, w_r, b_r, w_s, b_s))
    assert torch.autograd.gradcheck(lambda h_: GateProject.apply(h_, x, w_r, b_r, w_s, b_s)[2],
                                    (h,))

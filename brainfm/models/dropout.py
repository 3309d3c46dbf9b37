"""Dropout whose random numbers are cheap on CPUs.

torch's CPU dropout draws one Mersenne-Twister number per element (``bernoulli_``): in a
criss-cross layer that is a third of a training step. Here one 64-bit draw yields four 16-bit
uniforms, each compared with a threshold: the keep probability is exact to 2^-16, the mask
is the same i.i.d. Bernoulli. On GPUs torch's own fused dropout is used.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _drop_mask(shape, p: float, device) -> torch.Tensor:
    """Bool mask, True with probability p (to 2^-16)."""
    n = 1
    for s in shape:
        n *= s
    words = (n + 3) // 4
    bits = torch.randint(-(2 ** 63), 2 ** 63 - 1, (words,), dtype=torch.int64, device=device)
    threshold = -32768 + round(p * 65536)
    return (bits.view(torch.int16)[:n] < threshold).view(shape)


class _ApplyMask(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, drop, scale):
        ctx.save_for_backward(drop)
        ctx.scale = scale
        return (x * scale).masked_fill_(drop, 0.0)

    @staticmethod
    def backward(ctx, grad):
        (drop,) = ctx.saved_tensors
        return (grad * ctx.scale).masked_fill_(drop, 0.0), None, None


class Dropout(nn.Module):
    """Drop-in for ``nn.Dropout`` (same semantics: zero with probability p, scale the rest)."""

    def __init__(self, p: float = 0.1):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability {p} must be in [0, 1)")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if x.device.type != "cpu":
            return F.dropout(x, self.p, True)
        return _ApplyMask.apply(x, _drop_mask(x.shape, self.p, x.device), 1.0 / (1.0 - self.p))

    def extra_repr(self) -> str:
        return f"p={self.p}"

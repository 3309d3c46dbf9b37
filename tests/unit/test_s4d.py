"""S4D: the FFT convolution equals the state-space recurrence it stands for, both directions."""
from __future__ import annotations

import math

import pytest
import torch

from brainfm.models.s4d import S4D


def _recurrence(layer: S4D, u: torch.Tensor) -> torch.Tensor:
    """Step the discretised SSM sample by sample, in float64: the definition of the layer.

    forward:  s_t = dA s_{t-1} + dB u_t,       y_t = 2 Re(C_0 s_t)
    backward: z_t = dA z_{t+1} + dB u_t,       y_t += 2 Re(C_1 z_{t+1})   (strictly anticausal)
    plus D u_t.  ``u`` (B, L, H).
    """
    with torch.no_grad():
        dt_a, d_b, c = (v.to(torch.complex128) for v in layer.discretised())
    d_a = dt_a.exp()                                                  # (H, n)
    b, length, h = u.shape
    u = u.to(torch.float64)
    y = u * layer.d.detach().double()
    s = torch.zeros(b, h, d_a.shape[1], dtype=torch.complex128)
    for t in range(length):
        s = d_a * s + d_b * u[:, t, :, None]
        y[:, t] += 2 * (c[0] * s).sum(-1).real
    if layer.bidirectional:
        z = torch.zeros_like(s)                                       # z_{L} = 0
        for t in range(length - 1, -1, -1):
            y[:, t] += 2 * (c[1] * z).sum(-1).real                    # uses z_{t+1}
            z = d_a * z + d_b * u[:, t, :, None]
    return y


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("length", [1, 7, 64, 251])
def test_fft_convolution_equals_recurrence(bidirectional, length):
    torch.manual_seed(length)
    layer = S4D(d_model=6, d_state=8, bidirectional=bidirectional)
    u = torch.randn(2, length, 6)
    with torch.no_grad():
        y = layer(u)
    ref = _recurrence(layer, u)
    assert y.shape == u.shape
    torch.testing.assert_close(y.double(), ref, atol=2e-4, rtol=1e-4)


def test_backward_branch_is_strictly_anticausal():
    """An impulse at sample 20 reaches samples before 20 only through C_1, and sample 20
    itself only through D."""
    torch.manual_seed(0)
    layer = S4D(d_model=3, d_state=4)
    u = torch.zeros(1, 40, 3)
    u[0, 20] = 1.0
    with torch.no_grad():
        c_fwd = layer.c[0].clone()
        layer.c[1].zero_()
        y_fwd = layer(u)
        layer.c[0].zero_()
        layer.c[1].normal_()
        y_bwd = layer(u)
    assert torch.allclose(y_fwd[0, :20], torch.zeros(20, 3), atol=1e-6)   # causal
    assert y_fwd[0, 21:].abs().max() > 1e-3 and c_fwd.abs().max() > 0
    assert torch.allclose(y_bwd[0, 21:], torch.zeros(19, 3), atol=1e-6)   # anticausal
    assert y_bwd[0, :20].abs().max() > 1e-3
    torch.testing.assert_close(y_bwd[0, 20], layer.d.detach())           # not lag 0: only D


def test_s4d_lin_initialisation():
    torch.manual_seed(0)
    layer = S4D(d_model=32, d_state=16, dt_min=1e-3, dt_max=0.1)
    dt_a, _, _ = layer.discretised()
    dt = layer.log_dt.exp().detach()
    a = (dt_a / dt).detach()
    torch.testing.assert_close(a.real, torch.full((32, 8), -0.5))
    expected_imag = -math.pi * torch.arange(8.0).clamp_min(1e-4 / math.pi)
    torch.testing.assert_close(a.imag, expected_imag.expand(32, 8), rtol=1e-5, atol=1e-4)
    assert dt.min() >= 1e-3 and dt.max() <= 0.1 and dt.shape == (32, 1)
    assert layer.c.shape == (2, 32, 8, 2)       # two C's share A, B and dt
    assert S4D(4, 8, bidirectional=False).c.shape == (1, 4, 4, 2)


def test_odd_state_size_is_refused():
    with pytest.raises(ValueError, match="d_state=7"):
        S4D(4, d_state=7)

"""S4D: the FFT convolution equals the state-space recurrence it stands for, both directions."""
from __future__ import annotations

import math

import pytest
import torch

from brainfm.models import s4d
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


# ---- the hand-written backward passes -------------------------------------------------------
def _materialised_forward(layer: S4D, x: torch.Tensor) -> torch.Tensor:
    """The layer written the obvious way (plain autograd keeps the Vandermonde matrix and the
    spectra): what VandermondeKernel and LinearFFTConv must equal, values and gradients."""
    dt_a, d_b, c = layer.discretised()
    length = x.shape[1]
    powers = torch.exp(dt_a.unsqueeze(-1) * torch.arange(length, dtype=x.dtype))
    k = 2 * torch.einsum("khn,hnl->khl", c * d_b, powers).real
    k = (torch.cat([k[0], k[1].flip(-1)], dim=-1) if layer.bidirectional
         else torch.cat([k[0], torch.zeros_like(k[0])], dim=-1))
    u = x.transpose(1, 2)
    y = torch.fft.irfft(torch.fft.rfft(u, n=2 * length) * torch.fft.rfft(k), n=2 * length)
    return (y[..., :length] + u * layer.d[:, None]).transpose(1, 2)


@pytest.mark.parametrize("length", [1, 2, 11, 16])
def test_vandermonde_kernel_equals_direct_sum_and_gradcheck(length):
    """The factorised kernel (l = q j + m) equals the direct sum over exp(z l), and its
    gradients pass float64 finite differences (complex inputs, Wirtinger derivatives)."""
    g = torch.Generator().manual_seed(length)
    w = torch.randn(2, 3, 4, generator=g, dtype=torch.complex128, requires_grad=True)
    z = torch.complex(-0.05 - 0.1 * torch.rand(3, 4, generator=g, dtype=torch.float64),
                      -torch.rand(3, 4, generator=g, dtype=torch.float64)).requires_grad_()
    direct = 2 * torch.einsum("khn,hnl->khl", w, torch.exp(
        z[..., None] * torch.arange(length, dtype=torch.float64))).real
    torch.testing.assert_close(s4d.vandermonde_kernel(w, z, length), direct)
    assert torch.autograd.gradcheck(lambda a, b: s4d.vandermonde_kernel(a, b, length), (w, z))


@pytest.mark.parametrize("linear", ["weight_and_bias", "weight_only", "none"])
def test_linear_fft_conv_gradcheck(linear):
    """Float64 finite differences, with the fused Linear, a Linear without bias, and none
    (u = a, the path S4D takes without ``linear``: no identity matrix is built)."""
    g = torch.Generator().manual_seed(1)
    n_in = 4 if linear == "none" else 3
    args = [torch.randn(*shape, generator=g, dtype=torch.float64, requires_grad=True)
            for shape in [(2, 7, n_in), (4, 3), (4,), (4, 14), (4,)]]   # a, W, b, k, d
    if linear != "weight_and_bias":
        args[2] = None
    if linear == "none":
        args[1] = None
    assert torch.autograd.gradcheck(s4d.LinearFFTConv.apply, tuple(args))


@pytest.mark.parametrize("chunk", [None, 1, 2])
@pytest.mark.parametrize("with_linear", [False, True])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_layer_gradients_equal_the_materialised_layer(bidirectional, with_linear, chunk,
                                                      monkeypatch):
    """Every parameter's and the input's gradient, float32, with and without the fused
    input Linear (whose output the layer recomputes instead of keeping), with the batch of 3
    in one chunk, in chunks of 1, and in chunks of 2 (the last one partial)."""
    if chunk is not None:  # bytes of `chunk` sequences' (H, 2L) float32 buffers
        monkeypatch.setattr(s4d, "CHUNK_BYTES", chunk * 8 * 400 * 4)
        assert s4d._chunk(torch.zeros(3, 200, 8), 8, 400) == chunk
    torch.manual_seed(3)
    layer = S4D(d_model=8, d_state=16, bidirectional=bidirectional)
    linear = torch.nn.Linear(5, 8) if with_linear else None
    with torch.no_grad():  # trained-looking values, not the initial ones
        layer.log_neg_a_real.add_(0.3 * torch.randn_like(layer.log_neg_a_real))
        layer.a_imag.add_(torch.randn_like(layer.a_imag))
    x = torch.randn(3, 200, 5 if with_linear else 8, requires_grad=True)
    target = torch.randn(3, 200, 8)
    params = list(layer.parameters()) + (list(linear.parameters()) if with_linear else [])
    pre = linear if with_linear else (lambda v: v)
    grads = []
    for fn in (lambda v: layer(v, linear=linear),
               lambda v: _materialised_forward(layer, pre(v))):
        for p in params:
            p.grad = None
        x.grad = None
        y = fn(x)
        (y * target).sum().backward()
        grads.append([y.detach(), x.grad.clone()] + [p.grad.clone() for p in params])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * b.abs().max().item())


def test_channels_first_forward_is_forward_transposed():
    """The block's entry point returns the same values, in (B, H, L), contiguous."""
    torch.manual_seed(4)
    layer, linear = S4D(d_model=6, d_state=4), torch.nn.Linear(3, 6)
    x = torch.randn(2, 30, 3)
    with torch.no_grad():
        cf = layer.forward_channels_first(x, linear)
        torch.testing.assert_close(cf.transpose(1, 2), layer(x, linear))
    assert cf.shape == (2, 6, 30) and cf.is_contiguous()


@pytest.mark.parametrize("variant", ["linear_and_shift", "linear", "no_linear"])
def test_norm_linear_fft_conv_gradcheck(variant):
    """The LayerNorm-fused convolution (keeps x, recomputes LayerNorm(x) + shift in the
    backward pass): float64 finite differences for x, the norm's weight and bias, the shift,
    the Linear and the kernel."""
    g = torch.Generator().manual_seed(2)

    def rand(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64, requires_grad=True)
    n_in = 4 if variant == "no_linear" else 3
    x, ln_w, ln_b = rand(2, 7, n_in), rand(n_in), rand(n_in)
    shift = rand(2, 1, n_in) if variant == "linear_and_shift" else None
    w, b = (None, None) if variant == "no_linear" else (rand(4, 3), rand(4))
    k, d = rand(4, 14), rand(4)
    assert torch.autograd.gradcheck(
        lambda *args: s4d.NormLinearFFTConv.apply(*args, 1e-5),
        (x, ln_w, ln_b, shift, w, b, k, d))


def test_norm_must_normalise_the_last_dim():
    layer, x = S4D(d_model=4, d_state=4), torch.randn(1, 10, 3)
    with pytest.raises(ValueError, match="normalized_shape=.10, 3."):
        layer.forward_channels_first(x, torch.nn.Linear(3, 4), norm=torch.nn.LayerNorm([10, 3]))

"""S4D: a diagonal state-space layer applied as one long convolution (EEGDM's sequence mixer).

Every one of the ``d_model`` SSM channels has its own diagonal state matrix A (``d_state / 2``
complex-conjugate pairs, S4D-Lin initialisation A_n = -1/2 + i*pi*n), input vector B and step
size dt (log-uniform in [dt_min, dt_max]). Zero-order-hold discretisation turns them into a
kernel K[l] = 2 Re(sum_n C_n (exp(dt A_n) - 1) / A_n * B_n * exp(dt A_n l)) (a Vandermonde
product), applied by FFT over 2L samples so nothing wraps around, plus the skip term D*x.

Bidirectional: a second C (sharing A, B, dt) gives a strictly anticausal kernel, so
y[t] = sum_{s<=t} K_fwd[t-s] x[s] + sum_{m>t} K_bwd[m-t-1] x[m] + D x[t]; the two branches
together see every sample once except x[t] itself, which only D sees. This is the reference
code's layout (its "off-by-one"); keeping it lets its weights load unchanged.

Memory and speed. Written the obvious way (exp of dtA * arange(L), then a sum over n), autograd
keeps the (H, d_state/2, L) complex Vandermonde matrix of every layer until the backward pass
(131 MB per block of the published size at L = 1000), and the FFT convolution keeps the
spectrum of its input (twice the input's size). Here both are autograd Functions with
hand-written backward passes that keep only their small inputs and recompute the rest:
:class:`VandermondeKernel` builds the Vandermonde matrix in chunks of L by complex
multiplication (no exp/cos/sin per element) and contracts each chunk with one batched matrix
product; :class:`FFTConv` keeps the input and the kernel, not their spectra.
Works for any sequence length: the kernel is computed for the length it is given.
"""
from __future__ import annotations

import math

import torch
from torch import nn

_CHUNK = 256  # samples of L per Vandermonde chunk: (H, d_state, 256) floats at a time


def _powers(z_re: torch.Tensor, z_im: torch.Tensor, start: int, length: int,
            base: tuple[torch.Tensor, torch.Tensor] | None = None):
    """(H, 2n, length) real tensor [Re; Im] of exp(z l) for l = start .. start+length-1.

    ``base`` = exp(z l) for l = 0 .. length-1 (reused across chunks); a chunk is the base times
    exp(z start), one complex multiplication per element.
    """
    if base is None:  # by doubling: exp(z [s, 2s)) = exp(z [0, s)) * exp(z s)
        re = z_re.new_empty(*z_re.shape, length)
        im = z_re.new_empty(*z_re.shape, length)
        re[..., 0], im[..., 0] = 1.0, 0.0
        s = 1
        while s < length:
            m = min(s, length - s)
            mag = torch.exp(z_re * s)
            er, ei = (mag * torch.cos(z_im * s))[..., None], (mag * torch.sin(z_im * s))[..., None]
            br, bi = re[..., :m], im[..., :m]
            re[..., s:s + m] = br * er - bi * ei
            im[..., s:s + m] = br * ei + bi * er
            s += m
        base = (re, im)
    br, bi = base[0][..., :length], base[1][..., :length]
    if start == 0:
        return torch.cat([br, bi], dim=-2), base
    mag = torch.exp(z_re * start)
    er, ei = (mag * torch.cos(z_im * start))[..., None], (mag * torch.sin(z_im * start))[..., None]
    return torch.cat([br * er - bi * ei, br * ei + bi * er], dim=-2), base


class VandermondeKernel(torch.autograd.Function):
    """K[k, h, l] = 2 Re(sum_n W[k, h, n] exp(z[h, n] l)) from real and imaginary parts.

    Inputs ``w_re, w_im`` (K, H, n), ``z_re, z_im`` (H, n), ``length``; output (K, H, L).
    Saves only the inputs; the backward pass rebuilds the Vandermonde matrix chunk by chunk.
    With S = sum_l G V and T = sum_l G l V (G the output's gradient, V = exp(z l)):
    dW_re = 2 Re S, dW_im = -2 Im S, dz_re = 2 sum_k Re(W T), dz_im = -2 sum_k Im(W T).
    """

    @staticmethod
    def forward(ctx, w_re, w_im, z_re, z_im, length: int):
        ctx.save_for_backward(w_re, w_im, z_re, z_im)
        ctx.length = length
        n_k, h, _ = w_re.shape
        coef = torch.cat([w_re, -w_im], dim=-1).transpose(0, 1)           # (H, K, 2n)
        out = w_re.new_empty(h, n_k, length)
        base = None
        for start in range(0, length, _CHUNK):
            size = min(_CHUNK, length - start)
            powers, base = _powers(z_re, z_im, start, size, base)         # (H, 2n, size)
            out[..., start:start + size] = torch.bmm(coef, powers)
        return (2 * out).transpose(0, 1)                                  # (K, H, L)

    @staticmethod
    def backward(ctx, grad):
        w_re, w_im, z_re, z_im = ctx.saved_tensors
        length, n = ctx.length, z_re.shape[-1]
        g = grad.transpose(0, 1)                                          # (H, K, L)
        lag = torch.arange(length, device=g.device, dtype=g.dtype)
        g2 = torch.cat([g, g * lag], dim=1)                               # (H, 2K, L)
        acc = g.new_zeros(g.shape[0], g2.shape[1], 2 * n)                 # (H, 2K, 2n)
        base = None
        for start in range(0, length, _CHUNK):
            size = min(_CHUNK, length - start)
            powers, base = _powers(z_re, z_im, start, size, base)
            acc.baddbmm_(g2[..., start:start + size], powers.transpose(1, 2))
        n_k = w_re.shape[0]
        s_re, s_im = acc[:, :n_k, :n].transpose(0, 1), acc[:, :n_k, n:].transpose(0, 1)
        t_re, t_im = acc[:, n_k:, :n].transpose(0, 1), acc[:, n_k:, n:].transpose(0, 1)
        d_z_re = 2 * (w_re * t_re - w_im * t_im).sum(0)
        d_z_im = -2 * (w_re * t_im + w_im * t_re).sum(0)
        return 2 * s_re, -2 * s_im, d_z_re, d_z_im, None


class FFTConv(torch.autograd.Function):
    """y = (u circularly convolved with k over 2L)[:L] + d u, for u (B, H, L), k (H, 2L), d (H,).

    Saves u, k and d (not their spectra). The gradients are correlations with the output's
    gradient G: du = irfft(conj(k^) G^)[:L] + d G, dk = irfft(sum_b conj(u^) G^), dd = sum G u.
    """

    @staticmethod
    def forward(ctx, u, k, d):
        ctx.save_for_backward(u, k, d)
        length = u.shape[-1]
        n_fft = k.shape[-1]
        y = torch.fft.irfft(torch.fft.rfft(u, n=n_fft) * torch.fft.rfft(k), n=n_fft)
        return torch.addcmul(y[..., :length], u, d[:, None])

    @staticmethod
    def backward(ctx, grad):
        u, k, d = ctx.saved_tensors
        length, n_fft = u.shape[-1], k.shape[-1]
        g_f = torch.fft.rfft(grad, n=n_fft)                               # (B, H, L+1)
        d_u = d_k = d_d = None
        if ctx.needs_input_grad[0]:
            d_u = torch.fft.irfft(g_f * torch.fft.rfft(k).conj(), n=n_fft)[..., :length]
            d_u = torch.addcmul(d_u, grad, d[:, None])
        if ctx.needs_input_grad[1]:
            cross = (g_f * torch.fft.rfft(u, n=n_fft).conj()).sum(0)     # (H, L+1)
            d_k = torch.fft.irfft(cross, n=n_fft)
        if ctx.needs_input_grad[2]:
            d_d = (grad * u).sum((0, 2))
        return d_u, d_k, d_d


class S4D(nn.Module):
    """Diagonal SSM convolution over (batch, length, d_model) inputs."""

    def __init__(self, d_model: int, d_state: int = 64, dt_min: float = 1e-3,
                 dt_max: float = 0.1, bidirectional: bool = True):
        super().__init__()
        if d_state % 2:
            raise ValueError(f"d_state={d_state} must be even (conjugate pairs)")
        n = d_state // 2
        self.d_model, self.d_state, self.bidirectional = d_model, d_state, bidirectional
        log_dt = torch.rand(d_model, 1) * (math.log(dt_max) - math.log(dt_min)) \
            + math.log(dt_min)
        self.log_dt = nn.Parameter(log_dt)                                  # (H, 1)
        # Re(A) = -exp(log_neg_a_real); Im(A) = -a_imag. The reference clamps the
        # initial values at 1e-4, so A_0 starts at -1/2 - 1e-4 i rather than -1/2.
        self.log_neg_a_real = nn.Parameter(torch.full((d_model, n), math.log(0.5)))
        self.a_imag = nn.Parameter((math.pi * torch.arange(n, dtype=torch.float))
                                   .clamp_min(1e-4).repeat(d_model, 1))
        self.b = nn.Parameter(torch.view_as_real(torch.ones(d_model, n, dtype=torch.cfloat)))
        n_c = 2 if bidirectional else 1
        self.c = nn.Parameter(torch.view_as_real(torch.randn(n_c, d_model, n,
                                                             dtype=torch.cfloat)))
        self.d = nn.Parameter(torch.randn(d_model))

    def discretised(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(dt*A, ZOH input vector dB, C) as complex tensors: (H, n), (H, n), (K, H, n)."""
        dt = self.log_dt.exp()
        a = -self.log_neg_a_real.exp() - 1j * self.a_imag
        dt_a = dt * a
        d_b = torch.view_as_complex(self.b) * (dt_a.exp() - 1.0) / a
        return dt_a, d_b, torch.view_as_complex(self.c)

    def kernel(self, length: int) -> torch.Tensor:
        """(K, H, L) real kernels: K[k, h, l] = 2 Re(sum_n C dB exp(dtA l))."""
        dt_a, d_b, c = self.discretised()
        w = c * d_b
        return VandermondeKernel.apply(w.real.contiguous(), w.imag.contiguous(),
                                       dt_a.real.contiguous(), dt_a.imag.contiguous(), length)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (B, L, H) -> (B, L, H)."""
        length = x.shape[1]
        k = self.kernel(length)
        if self.bidirectional:  # lag j of the backward kernel sits at position 2L-1-j
            k = torch.cat([k[0], k[1].flip(-1)], dim=-1)                  # (H, 2L)
        else:
            k = torch.cat([k[0], k.new_zeros(k.shape[1], length)], dim=-1)
        u = x.transpose(1, 2).contiguous()                                # (B, H, L)
        return FFTConv.apply(u, k, self.d).transpose(1, 2)


__all__ = ["FFTConv", "S4D", "VandermondeKernel"]

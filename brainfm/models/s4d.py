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

Works for any sequence length: the kernel is computed for the length it is given.
"""
from __future__ import annotations

import math

import torch
from torch import nn


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
        powers = torch.exp(dt_a.unsqueeze(-1)
                           * torch.arange(length, device=dt_a.device))    # (H, n, L)
        return 2 * torch.einsum("khn,hnl->khl", c * d_b, powers).real

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (B, L, H) -> (B, L, H)."""
        length = x.shape[1]
        k = self.kernel(length)
        if self.bidirectional:  # lag j of the backward kernel sits at position 2L-1-j
            k = torch.cat([k[0], k[1].flip(-1)], dim=-1)                  # (H, 2L)
        else:
            k = k[0]
        u = x.transpose(1, 2)                                             # (B, H, L)
        n_fft = 2 * length
        y = torch.fft.irfft(torch.fft.rfft(u, n=n_fft) * torch.fft.rfft(k, n=n_fft),
                            n=n_fft)[..., :length]
        y = y + u * self.d[:, None]
        return y.transpose(1, 2)


__all__ = ["S4D"]

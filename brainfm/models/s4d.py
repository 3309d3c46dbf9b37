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
spectrum of its input (twice the input's size). Here :func:`vandermonde_kernel` factorises
the Vandermonde product through l = q j + m (q ~ sqrt(L)) into one batched matrix product
whose intermediates are small, so nothing of size (H, n, L) exists, and :class:`LinearFFTConv`
is an autograd Function with a hand-written backward pass that keeps the input, not its
spectrum, and recomputes the input's spectrum (it keeps the kernel's spectrum, which is no
larger than the kernel). On CPU it goes through the batch a few sequences at a time, through
zero-padded buffers it fills in place: a (B, H, 2L) temporary would be a fresh allocation,
page-faulted on first touch, and would raise the peak. Keeping the input's spectrum instead
of recomputing it was measured and does not pay: +63 MB kept per block, no faster.
Works for any sequence length: the kernel is computed for the length it is given.
"""
from __future__ import annotations

import math

import torch
from torch import nn

def _factors(z: torch.Tensor, length: int):
    """q, J and the factors exp(z m) (m < q) and exp(z q j) (j < J) of exp(z l), l = q j + m."""
    q = math.isqrt(max(length, 1) - 1) + 1                                # ceil(sqrt(L))
    n_blocks = -(-length // q)
    real = z.real.dtype
    m = torch.arange(q, device=z.device, dtype=real)
    j = q * torch.arange(n_blocks, device=z.device, dtype=real)
    # polar(exp(Re z l), Im z l): real exp/cos/sin, ~4x faster on CPU than a complex exp
    inner = torch.polar(torch.exp(z.real[..., None] * m), z.imag[..., None] * m)
    outer = torch.polar(torch.exp(z.real[..., None] * j), z.imag[..., None] * j)
    return q, n_blocks, inner, outer                                      # (H, n, q), (H, n, J)


def _re_im(x: torch.Tensor, dim: int) -> torch.Tensor:
    return torch.cat([x.real, x.imag], dim=dim)


class VandermondeKernel(torch.autograd.Function):
    """K[k, h, l] = 2 Re(sum_n w[k, h, n] exp(z[h, n] l)) for l < L; w (K, H, n), z (H, n)
    complex, output (K, H, L) real, without the (H, n, L) Vandermonde matrix.

    With l = q j + m (q ~ sqrt(L)), exp(z l) = exp(z q j) exp(z m): per SSM channel the kernel
    is a (K J, n) x (n, q) matrix product of w exp(z q j) with exp(z m), one real batched
    product; no exponential is taken per (h, n, l) element. Only w and z are saved; the backward
    pass rebuilds the factors. With G the output's gradient, S = sum_l G exp(z l) and
    T = sum_l G l exp(z l) (both through the same factorisation), PyTorch's gradients for
    complex inputs (dL/dRe + i dL/dIm) are dw = 2 conj(S) and dz = 2 conj(sum_k w T).
    """

    @staticmethod
    def forward(ctx, w, z, length: int):
        ctx.save_for_backward(w, z)
        ctx.length = length
        q, n_blocks, inner, outer = _factors(z, length)
        coef = (w[..., None] * outer).permute(1, 0, 3, 2)                 # (H, K, J, n)
        coef = coef.reshape(coef.shape[0], -1, coef.shape[-1])            # (H, K J, n)
        coef = torch.cat([coef.real, -coef.imag], dim=-1)                 # (H, K J, 2n)
        prod = torch.bmm(coef, _re_im(inner, -2))                         # (H, K J, q)
        k = prod.reshape(prod.shape[0], w.shape[0], n_blocks * q)[..., :length]
        return 2 * k.transpose(0, 1)                                      # (K, H, L)

    @staticmethod
    def backward(ctx, grad):
        w, z = ctx.saved_tensors
        length, (n_k, h, n) = ctx.length, w.shape
        q, n_blocks, inner, outer = _factors(z, length)
        g = torch.nn.functional.pad(grad.transpose(0, 1), (0, n_blocks * q - length))
        g = g.reshape(h, n_k * n_blocks, q)                               # (H, K J, q)
        m = torch.arange(q, device=z.device, dtype=g.dtype)
        # P[.., n] = sum_m G I, Pm = sum_m G m I, as real products of G with [Re; Im] parts
        rhs = torch.cat([_re_im(inner, 1), _re_im(inner * m, 1)], dim=1)  # (H, 4n, q)
        p = torch.bmm(g, rhs.transpose(1, 2))                             # (H, K J, 4n)
        p = p.reshape(h, n_k, n_blocks, 4 * n).permute(1, 0, 3, 2)        # (K, H, 4n, J)
        p0 = torch.complex(p[:, :, :n], p[:, :, n:2 * n])                 # sum_m G I
        p1 = torch.complex(p[:, :, 2 * n:3 * n], p[:, :, 3 * n:])         # sum_m G m I
        j = q * torch.arange(n_blocks, device=z.device, dtype=g.dtype)
        s_ = (outer * p0).sum(-1)                                         # (K, H, n)
        t_ = (outer * (p0 * j + p1)).sum(-1)
        return 2 * s_.conj(), 2 * (w * t_).sum(0).conj(), None


def vandermonde_kernel(w: torch.Tensor, z: torch.Tensor, length: int) -> torch.Tensor:
    """(K, H, L) real kernels from w (K, H, n) and z (H, n): see :class:`VandermondeKernel`."""
    return VandermondeKernel.apply(w, z, length)


# Bytes of one real FFT buffer of a batch chunk (LinearFFTConv): small enough that the
# buffers come from the allocator's free lists and stay in cache (a fresh 65 MB spectrum per
# product costs its page faults, ~40 ms each on CPU, and raises the peak). 2 MB is one
# sequence at the published width: at 20 blocks it peaked ~9 % lower than 8 MB (glibc
# leaves fewer large holes), no slower within the noise of the shared machine.
CHUNK_BYTES = 2 * 2**20


class LinearFFTConv(torch.autograd.Function):
    """y = (u circularly convolved with k over 2L)[:L] + d u with u = W a + b, for a (B, L, I),
    W (H, I), b (H,), k (H, 2L), d (H,); y and u are (B, H, L). With ``weight`` and ``bias``
    None, u is a itself (I = H) and no matrix product is done either way.

    Saves a, W, b, d and the kernel's spectrum k^ (H, L+1) complex, the size of k: neither u
    (it is recomputed by one matrix product) nor the input's spectrum. With G the output's
    gradient: du = irfft(conj(k^) G^)[:L] + d G, dk = irfft(sum_b conj(u^) G^), dd = dk[0]
    (the skip term is lag 0 of the same correlation), and the Linear's own gradients from du.
    Both passes run over chunks of the batch (:data:`CHUNK_BYTES`) through zero-padded
    buffers allocated once per call, so no (B, H, 2L) array exists. Under CUDA autocast it
    runs in float32 (the FFTs need it, and the buffers are written in place).
    """

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda", cast_inputs=torch.float32)
    def forward(ctx, a, weight, bias, k, d):
        k_f = torch.fft.rfft(k)
        ctx.save_for_backward(a, weight, bias, k_f, d)
        return _conv_forward(a, weight, bias, k_f, d)

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, grad):
        return _conv_backward(grad, *ctx.saved_tensors)


class NormLinearFFTConv(torch.autograd.Function):
    """:class:`LinearFFTConv` of a = LayerNorm(x) + shift, for x (B, L, I), the LayerNorm's
    weight and bias (I,), and ``shift`` broadcast to a (the block's conditioning, (B, 1, I)).

    Keeps x and not a: the LayerNorm before it keeps x anyway, so this saves one (B, L, I)
    array per block (16 MB at the published size) for recomputing a, one layer norm, in the
    backward pass.
    """

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda", cast_inputs=torch.float32)
    def forward(ctx, x, ln_weight, ln_bias, shift, weight, bias, k, d, eps: float):
        k_f = torch.fft.rfft(k)
        ctx.eps = eps
        ctx.save_for_backward(x, ln_weight, ln_bias, shift, weight, bias, k_f, d)
        a = _shifted_norm(x, ln_weight, ln_bias, shift, eps)[0]
        return _conv_forward(a, weight, bias, k_f, d)

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, grad):
        x, ln_weight, ln_bias, shift, weight, bias, k_f, d = ctx.saved_tensors
        a, mean, rstd = _shifted_norm(x, ln_weight, ln_bias, shift, ctx.eps)
        d_a, d_w, d_bias, d_k, d_d = _conv_backward(grad, a, weight, bias, k_f, d)
        del a
        d_x, d_lnw, d_lnb = torch.ops.aten.native_layer_norm_backward(
            d_a, x, x.shape[-1:], mean, rstd, ln_weight, ln_bias,
            [True, ln_weight is not None, ln_bias is not None])
        d_shift = None if shift is None else d_a.sum_to_size(shift.shape)
        return d_x, d_lnw, d_lnb, d_shift, d_w, d_bias, d_k, d_d, None


def _shifted_norm(x, ln_weight, ln_bias, shift, eps):
    """(LayerNorm(x) + shift, mean, rstd), the statistics as the LayerNorm backward wants."""
    a, mean, rstd = torch.native_layer_norm(x, x.shape[-1:], ln_weight, ln_bias, eps)
    return (a if shift is None else a.add_(shift)), mean, rstd


def _conv_forward(a, weight, bias, k_f, d):
    """The forward pass of :class:`LinearFFTConv`, the batch chunk by chunk."""
    (batch, length), h, n_fft = a.shape[:2], k_f.shape[0], 2 * (k_f.shape[-1] - 1)
    out = a.new_empty(batch, h, length)
    step = _chunk(a, h, n_fft)
    pad = a.new_zeros(step, h, n_fft)          # [u, 0]: the second half stays zero
    for s in range(0, batch, step):
        c = min(step, batch - s)
        u = _linear_t(a[s:s + c], weight, bias, out=pad[:c, :, :length])
        y = torch.fft.irfft(torch.fft.rfft(pad[:c]).mul_(k_f), n=n_fft)
        torch.addcmul(y[:, :, :length], u, d[:, None], out=out[s:s + c])
    return out


def _conv_backward(grad, a, weight, bias, k_f, d):
    """Gradients (a, W, b, k, d) of :class:`LinearFFTConv`, the batch chunk by chunk."""
    (batch, length), h, n_fft = a.shape[:2], k_f.shape[0], 2 * (k_f.shape[-1] - 1)
    k_f_conj = k_f.conj().resolve_conj()
    step = _chunk(a, h, n_fft)
    g_pad, u_pad = a.new_zeros(step, h, n_fft), a.new_zeros(step, h, n_fft)
    cross = k_f.new_zeros(k_f.shape)                                      # sum_b conj(u^) G^
    d_a = torch.empty_like(a)
    d_w = None if weight is None else torch.zeros_like(weight)
    d_bias = None if bias is None else torch.zeros_like(bias)
    for s in range(0, batch, step):
        c = min(step, batch - s)
        g = grad[s:s + c]
        g_pad[:c, :, :length] = g
        g_f = torch.fft.rfft(g_pad[:c])
        _linear_t(a[s:s + c], weight, bias, out=u_pad[:c, :, :length])
        u_f = torch.fft.rfft(u_pad[:c]).conj_physical_()
        cross += torch.einsum("bhf,bhf->hf", u_f, g_f)
        d_u = torch.fft.irfft(g_f.mul_(k_f_conj), n=n_fft)[:, :, :length]
        d_u.addcmul_(g, d[:, None])                                       # (c, H, L)
        if weight is None:
            d_a[s:s + c] = d_u.transpose(1, 2)
            continue
        torch.bmm(d_u.transpose(1, 2), weight.expand(c, -1, -1), out=d_a[s:s + c])
        d_w += torch.bmm(d_u, a[s:s + c]).sum(0)
        if d_bias is not None:
            d_bias += d_u.sum((0, 2))
    d_k = torch.fft.irfft(cross, n=n_fft)
    return d_a, d_w, d_bias, d_k, d_k[:, 0].clone()


def _chunk(a: torch.Tensor, h: int, n_fft: int) -> int:
    """Sequences per chunk: :data:`CHUNK_BYTES` of (H, 2L) buffer on CPU, at least 1; the whole
    batch elsewhere (a GPU's caching allocator has no page faults to save, and per-chunk
    kernel launches would cost more than the buffers)."""
    if a.device.type != "cpu":
        return a.shape[0]
    return max(1, min(a.shape[0], CHUNK_BYTES // (h * n_fft * a.element_size())))


def _linear_t(a: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None,
              out: torch.Tensor) -> torch.Tensor:
    """(W a + b) transposed to (B, H, L) for a (B, L, I), written into ``out``; a transposed
    when W is None."""
    if weight is None:
        return out.copy_(a.transpose(1, 2))
    w = weight.expand(a.shape[0], -1, -1)
    if bias is None:
        return torch.bmm(w, a.transpose(1, 2), out=out)
    return torch.baddbmm(bias[:, None], w, a.transpose(1, 2), out=out)


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
        return vandermonde_kernel(c * d_b, dt_a, length)

    def forward(self, x: torch.Tensor, linear: nn.Linear | None = None) -> torch.Tensor:
        """``x`` (B, L, H) -> (B, L, H). With ``linear``, ``x`` is that Linear's input and the
        layer convolves ``linear(x)``, which the backward pass recomputes instead of keeping."""
        return self.forward_channels_first(x, linear).transpose(1, 2)

    def forward_channels_first(self, x: torch.Tensor, linear: nn.Linear | None = None,
                               norm: nn.LayerNorm | None = None,
                               shift: torch.Tensor | None = None) -> torch.Tensor:
        """As :meth:`forward` but returns (B, H, L), the layout the convolution computes in:
        a caller that continues channel-wise (gating) avoids a transposed copy each way.
        With ``norm``, the layer convolves linear(norm(x) + shift) and keeps x, not the
        normalised input (see :class:`NormLinearFFTConv`)."""
        length = x.shape[1]
        k = self.kernel(length)
        if self.bidirectional:  # lag j of the backward kernel sits at position 2L-1-j
            k = torch.cat([k[0], k[1].flip(-1)], dim=-1)                  # (H, 2L)
        else:
            k = torch.cat([k[0], k.new_zeros(k.shape[1], length)], dim=-1)
        weight, bias = (None, None) if linear is None else (linear.weight, linear.bias)
        if norm is not None:
            if tuple(norm.normalized_shape) != (x.shape[-1],):
                raise ValueError(f"S4D's norm must normalise the last dim ({x.shape[-1]}); "
                                 f"got normalized_shape={tuple(norm.normalized_shape)}")
            return NormLinearFFTConv.apply(x, norm.weight, norm.bias, shift, weight, bias, k,
                                           self.d, norm.eps)
        if shift is not None:
            x = x + shift
        return LinearFFTConv.apply(x, weight, bias, k, self.d)


__all__ = ["LinearFFTConv", "NormLinearFFTConv", "S4D", "VandermondeKernel",
           "vandermonde_kernel"]

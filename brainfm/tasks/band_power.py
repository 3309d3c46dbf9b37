"""Log band power of patches: the spectral target of masked-patch pretraining.

The classical baselines that win on the shared tasks (eyes open/closed, rest/arithmetic,
SSVEP) read band power. Asking the network to predict a hidden patch's log power in the
canonical bands, from what it can see, makes those quantities part of what its features must
carry; raw-sample reconstruction can be solved largely by copying neighbours instead.
"""
from __future__ import annotations

import torch

#: (name, low Hz, high Hz): half-open [low, high) bins of a patch's spectrum
BANDS = (("delta", 1.0, 4.0), ("theta", 4.0, 8.0), ("alpha", 8.0, 13.0),
         ("beta", 13.0, 30.0), ("gamma", 30.0, 45.0))


def band_matrix(patch_len: int, sfreq: float, device=None) -> torch.Tensor:
    """(patch_len // 2 + 1, n_bands): 1 / bins for the rFFT bins of each band (their mean)."""
    freqs = torch.fft.rfftfreq(patch_len, d=1.0 / sfreq)
    cols = []
    for name, lo, hi in BANDS:
        inside = (freqs >= lo) & (freqs < hi)
        if not inside.any():
            raise ValueError(f"band {name} ({lo}-{hi} Hz) has no frequency bin for patches of "
                             f"{patch_len} samples at {sfreq} Hz -> use longer patches")
        cols.append(inside.float() / inside.sum())
    return torch.stack(cols, dim=1).to(device)


def log_band_power(patches: torch.Tensor, sfreq: float, eps: float = 1e-6) -> torch.Tensor:
    """(..., P) patches -> (..., n_bands) natural log of the mean periodogram power per band
    (Hann-free: 1 s patches, bands several bins wide)."""
    p = patches.shape[-1]
    spec = torch.fft.rfft(patches.float(), dim=-1, norm="forward").abs().pow(2)
    return torch.log(spec @ band_matrix(p, sfreq, patches.device) + eps)


def visible_band_guess(power: torch.Tensor, mask: torch.Tensor,
                       channel_mask: torch.Tensor | None = None) -> torch.Tensor:
    """The trivial guess of every patch's log band power (B, C, N, bands) from visible
    patches only: its channel's mean over the channel's visible patches, or, for a channel
    hidden throughout, the mean over the sample's visible patches."""
    seen = ~mask
    if channel_mask is not None:
        seen = seen & channel_mask[:, :, None].to(torch.bool)
    w = seen.to(power.dtype)[..., None]
    per_channel = (power * w).sum(2, keepdim=True) / w.sum(2, keepdim=True).clamp_min(1)
    per_sample = (power * w).sum((1, 2), keepdim=True) / w.sum((1, 2), keepdim=True).clamp_min(1)
    return torch.where(w.sum(2, keepdim=True) > 0, per_channel, per_sample).expand_as(power)

"""Which patches to hide in masked-patch pretraining."""
from __future__ import annotations

import torch


def sample_patch_mask(shape, ratio: float, kind: str = "bernoulli",
                      channel_mask: torch.Tensor | None = None,
                      generator: torch.Generator | None = None,
                      device=None) -> torch.Tensor:
    """(B, C, N) bool mask, True = hidden; never hides a padded channel's patches.

    ``bernoulli`` hides each (channel, patch) independently with probability ``ratio``
    (CBraMod); ``exact`` hides exactly round(ratio x real patches) per sample.
    """
    b, c, n = shape
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"mask ratio {ratio} must lie strictly between 0 and 1")
    valid = (torch.ones(b, c, dtype=torch.bool, device=device) if channel_mask is None
             else channel_mask.to(device=device, dtype=torch.bool))
    scores = torch.rand(b, c, n, generator=generator, device="cpu").to(device)
    if kind == "bernoulli":
        mask = scores < ratio
    elif kind == "exact":
        scores = scores.masked_fill(~valid[:, :, None], 2.0).view(b, -1)
        k = (valid.sum(dim=1) * n * ratio).round().clamp_min(1).long()
        ranks = scores.argsort(dim=1).argsort(dim=1)
        mask = (ranks < k[:, None]).view(b, c, n)
    else:
        raise ValueError(f"mask kind {kind!r}; use 'bernoulli' or 'exact'")
    return mask & valid[:, :, None]

"""Which patches to hide in masked-patch pretraining.

Independent (channel, patch) masks are CBraMod's; they leave most hidden patches with visible
neighbours in the same patch (other channels) and the same channel (other patches), so copying
the neighbours' mean already gets most of the way. Whole-channel and time-block masks remove
one of those two shortcuts per sample: a hidden channel must be inferred from the other
channels' activity over the whole window, a hidden stretch of time from what came before and
after on every channel.
"""
from __future__ import annotations

import torch

MASK_KINDS = ("bernoulli", "exact", "channel", "time_block", "channel_time")


def sample_patch_mask(shape, ratio: float, kind: str = "bernoulli",
                      channel_mask: torch.Tensor | None = None,
                      generator: torch.Generator | None = None,
                      device=None) -> torch.Tensor:
    """(B, C, N) bool mask, True = hidden; never hides a padded channel's patches.

    ``bernoulli`` hides each (channel, patch) independently with probability ``ratio``
    (CBraMod); ``exact`` hides exactly round(ratio x real patches) per sample; ``channel``
    hides round(ratio x real channels) whole channels per sample (at least one, and at least
    one left visible; single-channel samples get a time block instead); ``time_block`` hides
    one contiguous run of round(ratio x patches) patches on every channel; ``channel_time``
    draws one of the two per sample.
    """
    b, c, n = shape
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"mask ratio {ratio} must lie strictly between 0 and 1")
    if kind not in MASK_KINDS:
        raise ValueError(f"mask kind {kind!r}; use one of {', '.join(MASK_KINDS)}")
    valid = (torch.ones(b, c, dtype=torch.bool, device=device) if channel_mask is None
             else channel_mask.to(device=device, dtype=torch.bool))
    scores = torch.rand(b, c, n, generator=generator, device="cpu")
    if kind == "bernoulli":
        mask = (scores < ratio).to(device)
    elif kind == "exact":
        scores = scores.to(device).masked_fill(~valid[:, :, None], 2.0).view(b, -1)
        k = (valid.sum(dim=1) * n * ratio).round().clamp_min(1).long()
        ranks = scores.argsort(dim=1).argsort(dim=1)
        mask = (ranks < k[:, None]).view(b, c, n)
    else:
        # one extra draw per sample, from the same generator: which structure and where
        pick = torch.rand(b, 2, generator=generator, device="cpu").to(device)
        n_real = valid.sum(dim=1)
        use_channels = n_real > 1
        if kind == "time_block":
            use_channels = torch.zeros_like(use_channels)
        elif kind == "channel_time":
            use_channels = use_channels & (pick[:, 0] < 0.5)
        mask = torch.where(use_channels[:, None, None],
                           _channel_mask(scores[:, :, 0].to(device), valid, ratio)[:, :, None]
                           .expand(b, c, n),
                           _time_block(pick[:, 1], n, ratio)[:, None, :].expand(b, c, n))
    return mask & valid[:, :, None]


def _channel_mask(scores: torch.Tensor, valid: torch.Tensor, ratio: float) -> torch.Tensor:
    """(B, C): round(ratio x real channels) real channels per sample, clamped to [1, C-1]."""
    n_real = valid.sum(dim=1)
    k = (n_real * ratio).round().long().clamp(min=1)
    k = torch.minimum(k, (n_real - 1).clamp_min(1))
    ranks = scores.masked_fill(~valid, 2.0).argsort(dim=1).argsort(dim=1)
    return ranks < k[:, None]


def _time_block(where: torch.Tensor, n: int, ratio: float) -> torch.Tensor:
    """(B, N): one contiguous run of round(ratio x N) patches (at least 1, at most N-1 when
    N > 1), starting at a uniformly drawn position."""
    length = max(1, min(round(ratio * n), n - 1 if n > 1 else 1))
    start = (where * (n - length + 1)).floor().long().clamp(max=n - length)
    idx = torch.arange(n, device=where.device)
    return (idx[None, :] >= start[:, None]) & (idx[None, :] < start[:, None] + length)

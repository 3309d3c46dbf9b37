"""Filling hidden patches from what is visible: the mean of the visible channels.

Shared by the masked-patch model (``mask_token="mean"`` starts every hidden patch from this
guess and learns the correction) and by the trivial predictor it is measured against.
"""
from __future__ import annotations

import torch


def visible_channel_mean(x: torch.Tensor, mask: torch.Tensor,
                         channel_mask: torch.Tensor | None = None) -> torch.Tensor:
    """(B, C, N, P): per patch, the mean of the visible real channels, on every channel
    (0 where no channel is visible). ``mask`` (B, C, N) is True where a patch is hidden."""
    visible = ~mask
    if channel_mask is not None:
        visible = visible & channel_mask[:, :, None].to(torch.bool)
    w = visible.to(x.dtype)[..., None]
    count = w.sum(dim=1, keepdim=True)
    mean = (x * w).sum(dim=1, keepdim=True) / count.clamp_min(1.0)
    return mean.expand_as(x)

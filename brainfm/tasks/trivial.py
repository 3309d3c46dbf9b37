"""Trivial predictors of hidden patches: the bar a masked-patch model has to clear.

A falling loss proves little: a model may learn no more than what copying the neighbours
gives. Each predictor fills the hidden (channel, patch) cells of a batch from its visible
cells only:

- ``zeros``: every hidden sample is 0 (the data are high-passed, so this is the mean);
- ``spatial``: the mean of the visible channels at the same patch (0 where none is visible);
- ``temporal``: a straight line from the last sample of the nearest visible patch before to
  the first sample of the nearest visible patch after, in the same channel; the edge value
  held where only one side is visible, 0 where neither is.

The better of ``spatial`` and ``temporal`` (per dataset, over all its hidden patches) is the
best trivial predictor a checkpoint must beat.
"""
from __future__ import annotations

import torch

from ..models.fill import visible_channel_mean

PREDICTORS = ("zeros", "spatial", "temporal")


# the mean of the visible real channels at each patch, on every channel: the same fill the
# model's mask_token="mean" starts from
spatial_mean = visible_channel_mean


def temporal_interpolation(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, C, N, P): hidden patches bridged linearly between the neighbouring visible
    patches of the same channel; visible patches are returned unchanged."""
    b, c, n, p = x.shape
    visible = ~mask
    pos = torch.arange(n, device=x.device).expand(b, c, n)
    left = torch.where(visible, pos, torch.full_like(pos, -1)).cummax(dim=2).values
    right = torch.where(visible, pos, torch.full_like(pos, n)).flip(2).cummin(dim=2).values.flip(2)
    has_left, has_right = left >= 0, right < n
    last = x[..., -1]                                    # (B, C, N) last sample of each patch
    first = x[..., 0]
    e_left = torch.gather(last, 2, left.clamp(0, n - 1)) * has_left
    e_right = torch.gather(first, 2, right.clamp(0, n - 1)) * has_right
    # sample times: left edge at the end of patch `left`, right edge at the start of `right`
    t = pos[..., None] * p + torch.arange(p, device=x.device)           # (B, C, N, P)
    t_left = (left * p + p - 1)[..., None].to(x.dtype)
    t_right = (right * p)[..., None].to(x.dtype)
    frac = ((t.to(x.dtype) - t_left) / (t_right - t_left).clamp_min(1.0)).clamp(0, 1)
    both = (has_left & has_right)[..., None]
    line = e_left[..., None] + (e_right - e_left)[..., None] * frac
    one_side = torch.where(has_left[..., None], e_left[..., None], e_right[..., None])
    filled = torch.where(both, line, one_side.expand_as(x))
    return torch.where(mask[..., None], filled, x)


def hidden_errors(x: torch.Tensor, mask: torch.Tensor, channel_mask: torch.Tensor | None,
                  model_pred: torch.Tensor) -> torch.Tensor:
    """(B, 1 + predictors): per window, the squared error on hidden patches of the model's
    prediction and then of each of :data:`PREDICTORS` (``zeros``' is the hidden power)."""
    hidden = mask if channel_mask is None else mask & channel_mask[:, :, None].to(torch.bool)
    hidden = hidden[..., None].to(x.dtype)
    preds = [model_pred.float(), *trivial_predictions(x, mask, channel_mask).values()]
    return torch.stack([((p - x) ** 2 * hidden).sum(dim=(1, 2, 3)) for p in preds], dim=1)


def trivial_predictions(x: torch.Tensor, mask: torch.Tensor,
                        channel_mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Every trivial predictor's (B, C, N, P) prediction of the batch."""
    return {"zeros": torch.zeros_like(x), "spatial": spatial_mean(x, mask, channel_mask),
            "temporal": temporal_interpolation(x, mask)}

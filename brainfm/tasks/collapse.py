"""Watching representations for collapse (VICReg's variance, RankMe's effective rank).

Objectives that predict a network's own representations (latent prediction with an EMA
target) can reach a low loss by making every representation the same. Two numbers over a set
of windows' pooled features show it: the per-dimension standard deviation (near 0: collapsed)
and the effective rank, exp of the entropy of the normalised singular values (Garrido et al.,
2023, who find it tracks downstream accuracy; 1: everything on one line).
"""
from __future__ import annotations

import torch

#: below this effective rank (out of D dimensions) a run is flagged as collapsed
COLLAPSED_RANK = 2.0
#: or when the mean per-dimension std of the (layer-normalised scale) features falls below this
COLLAPSED_STD = 1e-3


def representation_stats(features: torch.Tensor) -> dict:
    """``features`` (n, D), one row per window: std (mean and min over dimensions), effective
    rank, and ``collapsed`` (rank below :data:`COLLAPSED_RANK` or std below
    :data:`COLLAPSED_STD`)."""
    f = features.double()
    if f.shape[0] < 2:
        raise ValueError("representation statistics need at least 2 windows")
    std = f.std(dim=0)
    centred = f - f.mean(dim=0, keepdim=True)
    s = torch.linalg.svdvals(centred)
    p = s / s.sum().clamp_min(1e-12)
    entropy = -(p * torch.log(p.clamp_min(1e-12))).sum()
    rank = float(torch.exp(entropy))
    out = {"std_mean": float(std.mean()), "std_min": float(std.min()),
           "effective_rank": rank, "dims": int(f.shape[1])}
    out["collapsed"] = bool(rank < COLLAPSED_RANK or out["std_mean"] < COLLAPSED_STD)
    return out

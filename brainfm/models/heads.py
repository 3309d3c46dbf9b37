"""Heads: what a backbone's per-patch features (B, C, N, D) become.

``reconstruction`` maps each patch back to its samples (pretraining); ``classification``
pools over real channels and patches, then a linear layer; ``none`` returns the features.
"""
from __future__ import annotations

import torch
from torch import nn


class ReconstructionHead(nn.Module):
    def __init__(self, d_model: int, patch_len: int):
        super().__init__()
        self.proj = nn.Linear(d_model, patch_len)

    def forward(self, feats: torch.Tensor, channel_mask=None) -> torch.Tensor:
        return self.proj(feats)


class ClassificationHead(nn.Module):
    """Mean over valid channels and all patches, then Linear(D, n_outputs)."""

    def __init__(self, d_model: int, n_outputs: int, dropout: float = 0.0):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(d_model, n_outputs)

    def forward(self, feats: torch.Tensor, channel_mask=None) -> torch.Tensor:
        pooled = masked_mean(feats, channel_mask)
        return self.proj(self.dropout(pooled))


class FeaturesHead(nn.Module):
    def forward(self, feats: torch.Tensor, channel_mask=None) -> torch.Tensor:
        return feats


def masked_mean(feats: torch.Tensor, channel_mask: torch.Tensor | None) -> torch.Tensor:
    """(B, C, N, D) -> (B, D), averaging real channels only."""
    if channel_mask is None:
        return feats.mean(dim=(1, 2))
    w = channel_mask.to(feats.dtype)[:, :, None, None]
    return (feats * w).sum(dim=(1, 2)) / (w.sum(dim=(1, 2)) * feats.shape[2]).clamp_min(1)


def build_head(kind: str, d_model: int, patch_len: int = 200,
               n_outputs: int | None = None) -> nn.Module:
    if kind == "reconstruction":
        return ReconstructionHead(d_model, patch_len)
    if kind == "classification":
        if not n_outputs:
            raise ValueError("a classification head needs n_outputs (the number of classes)")
        return ClassificationHead(d_model, n_outputs)
    if kind == "none":
        return FeaturesHead()
    raise ValueError(f"head={kind!r}; use reconstruction, classification or none")

"""Heads: what a backbone's per-patch features (B, C, N, D) become.

``reconstruction`` maps each patch back to its samples (pretraining). Two classification
heads: ``pooled`` (alias ``classification``) averages real channels and patches, then one
linear layer, and takes any montage and length; ``flatten`` keeps every token, as CBraMod's
fine-tuning head does, and feeds the flattened (C, N, D) features to a small MLP, so it fixes
the channel count, order and window length. ``none`` returns the features.
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


class FlattenHead(nn.Module):
    """Every token of a fixed montage and length, flattened, through a 3-layer ELU MLP.

    Widths narrow from C*N*D to N*D to D (the choice CBraMod made for its downstream tasks).
    Padded channels are zeroed first so that padding cannot carry information.
    """

    def __init__(self, d_model: int, n_outputs: int, n_chans: int, n_patches: int,
                 dropout: float = 0.1):
        super().__init__()
        self.n_chans, self.n_patches = n_chans, n_patches
        width = n_chans * n_patches * d_model
        self.mlp = nn.Sequential(
            nn.Linear(width, n_patches * d_model), nn.ELU(), nn.Dropout(dropout),
            nn.Linear(n_patches * d_model, d_model), nn.ELU(), nn.Dropout(dropout),
            nn.Linear(d_model, n_outputs))

    def forward(self, feats: torch.Tensor, channel_mask=None) -> torch.Tensor:
        if feats.shape[1:3] != (self.n_chans, self.n_patches):
            raise ValueError(f"the flatten head was built for {self.n_chans} channels x "
                             f"{self.n_patches} patches, got {tuple(feats.shape[1:3])}; "
                             "use head=pooled for varying montages or window lengths")
        if channel_mask is not None:
            feats = feats * channel_mask.to(feats.dtype)[:, :, None, None]
        return self.mlp(feats.flatten(1))


class FeaturesHead(nn.Module):
    def forward(self, feats: torch.Tensor, channel_mask=None) -> torch.Tensor:
        return feats


def masked_mean(feats: torch.Tensor, channel_mask: torch.Tensor | None) -> torch.Tensor:
    """(B, C, N, ...) -> (B, ...), averaging real channels and all patches (e.g. (B, C, N,
    layers, D) -> (B, layers, D))."""
    if channel_mask is None:
        return feats.mean(dim=(1, 2))
    w = channel_mask.to(feats.dtype).view(*channel_mask.shape, *[1] * (feats.dim() - 2))
    return (feats * w).sum(dim=(1, 2)) / (w.sum(dim=(1, 2)) * feats.shape[2]).clamp_min(1)


HEADS = ("reconstruction", "pooled", "classification", "flatten", "none")


def build_head(kind: str, d_model: int, patch_len: int = 200, n_outputs: int | None = None,
               n_chans: int | None = None, n_patches: int | None = None) -> nn.Module:
    if kind == "reconstruction":
        return ReconstructionHead(d_model, patch_len)
    if kind in ("pooled", "classification", "flatten") and not n_outputs:
        raise ValueError(f"a {kind} head needs n_outputs (the number of classes)")
    if kind in ("pooled", "classification"):
        return ClassificationHead(d_model, n_outputs)
    if kind == "flatten":
        if not (n_chans and n_patches):
            raise ValueError("the flatten head needs n_chans and n_patches (it keeps every "
                             "token of a fixed montage and window length)")
        return FlattenHead(d_model, n_outputs, n_chans, n_patches)
    if kind == "none":
        return FeaturesHead()
    raise ValueError(f"head={kind!r}; use one of {', '.join(HEADS)}")

"""Patch embedding: raw patches (B, C, N, P) -> tokens (B, C, N, D).

Two branches, added: temporal convolutions over the samples of each patch, and a linear
projection of the patch's amplitude spectrum. Sizes follow from the patch length and model
width (CBraMod: P = 200, D = 200 -> 25 filters x 8 steps, stride 25, kernel 49, 101 bins).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .dropout import Dropout


class MaskedGroupNorm(nn.Module):
    """GroupNorm whose statistics pool over every valid (channel, patch, step) of a sample.

    CBraMod normalises the convolution features of a whole sample at once (all channels and
    patches together); this does the same but leaves padded channels out of the statistics,
    so padding a batch changes nothing. Without padding it equals ``nn.GroupNorm``.
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5):
        super().__init__()
        if num_channels % num_groups:
            raise ValueError(f"{num_channels} features do not split into {num_groups} groups")
        self.num_groups, self.eps = num_groups, eps
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` (B, F, C, N, S); ``valid`` (B, C) bool or None (all valid)."""
        b, f, c, n, s = x.shape
        if valid is None:  # torch's kernel: bit-for-bit what CBraMod computes
            y = F.group_norm(x.reshape(b, f, c * n, s), self.num_groups, self.weight,
                             self.bias, self.eps)
            return y.view(b, f, c, n, s)
        g = self.num_groups
        xg = x.reshape(b, g, f // g, c, n, s)
        w = valid.to(x.dtype).view(b, 1, 1, c, 1, 1)
        count = w.sum(dim=3, keepdim=True) * (f // g) * n * s
        mean = (xg * w).sum(dim=(2, 3, 4, 5), keepdim=True) / count
        var = (((xg - mean) ** 2) * w).sum(dim=(2, 3, 4, 5), keepdim=True) / count
        y = ((xg - mean) / torch.sqrt(var + self.eps)).reshape(b, f, c, n, s)
        return y * self.weight.view(1, f, 1, 1, 1) + self.bias.view(1, f, 1, 1, 1)


class TemporalConvBranch(nn.Module):
    """Three convolution stages along the samples of each patch: conv -> norm -> GELU."""

    def __init__(self, patch_len: int, d_model: int, n_steps: int = 8, groups: int = 5):
        super().__init__()
        if d_model % n_steps or patch_len % n_steps:
            raise ValueError(f"d_model={d_model} and patch_len={patch_len} must be multiples "
                             f"of n_steps={n_steps}")
        filters = d_model // n_steps
        stride = patch_len // n_steps
        self.filters, self.n_steps = filters, n_steps
        groups = groups if filters % groups == 0 else 1
        self.conv0 = nn.Conv2d(1, filters, (1, 2 * stride - 1), stride=(1, stride),
                               padding=(0, stride - 1))
        self.conv1 = nn.Conv2d(filters, filters, (1, 3), padding=(0, 1))
        self.conv2 = nn.Conv2d(filters, filters, (1, 3), padding=(0, 1))
        self.norm0 = MaskedGroupNorm(groups, filters)
        self.norm1 = MaskedGroupNorm(groups, filters)
        self.norm2 = MaskedGroupNorm(groups, filters)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
        b, c, n, p = x.shape
        h = x.reshape(b, 1, c * n, p)
        for conv, norm in ((self.conv0, self.norm0), (self.conv1, self.norm1),
                           (self.conv2, self.norm2)):
            h = conv(h)
            f, s = h.shape[1], h.shape[-1]
            h = self.act(norm(h.view(b, f, c, n, s), valid).view(b, f, c * n, s))
        # (B, F, C*N, S) -> (B, C, N, F*S): feature index = filter * steps + step
        return h.permute(0, 2, 1, 3).reshape(b, c, n, -1)


MASK_TOKENS = ("zeros", "learned", "mean")


class PatchEmbedding(nn.Module):
    """Temporal-convolution and spectral branches, summed.

    ``mask_token="zeros"`` replaces masked patches by zeros in the signal before embedding
    (CBraMod's frozen mask vector); ``"learned"`` replaces their embedding by a trained
    vector (as BERT/MAE do); ``"mean"`` expects masked patches already filled by the caller
    (the criss-cross model fills them with the mean of the visible channels) and adds a
    trained vector to their embedding, so the network knows which patches are guesses. ``spectral_input="abs"`` feeds the amplitude spectrum as
    CBraMod does (in units of 100 uV its values are ~50x smaller than the temporal branch's
    output, so the branch barely counts); ``"log"`` feeds its logarithm, which spans the
    1/f range evenly and is on the temporal branch's scale. ``linear_branch`` adds a linear
    projection of the raw patch.
    """

    def __init__(self, patch_len: int = 200, d_model: int = 200, dropout: float = 0.1,
                 n_steps: int = 8, mask_token: str = "zeros", spectral_input: str = "abs",
                 linear_branch: bool = False):
        super().__init__()
        if mask_token not in MASK_TOKENS:
            raise ValueError(f"mask_token={mask_token!r}; use one of {MASK_TOKENS}")
        if spectral_input not in ("abs", "log"):
            raise ValueError(f"spectral_input={spectral_input!r}; use 'abs' or 'log'")
        self.spectral_input = spectral_input
        self.patch_len, self.d_model, self.mask_mode = patch_len, d_model, mask_token
        if mask_token == "zeros":
            self.mask_token = nn.Parameter(torch.zeros(patch_len), requires_grad=False)
        else:
            self.mask_token = nn.Parameter(torch.zeros(d_model))
            nn.init.normal_(self.mask_token, std=0.02)
        self.temporal = TemporalConvBranch(patch_len, d_model, n_steps)
        # a linear projection of the raw samples (ViT/MAE's patch embedding): keeps the
        # waveform's phase and amplitude, which a narrow model's 8-step convolution
        # features (d_model / 8 filters) and the magnitude spectrum cannot carry
        self.linear = nn.Linear(patch_len, d_model) if linear_branch else None
        self.spectral = nn.Linear(patch_len // 2 + 1, d_model)
        self.spectral_dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                valid: torch.Tensor | None = None) -> torch.Tensor:
        if x.shape[-1] != self.patch_len:
            raise ValueError(f"patches of {x.shape[-1]} samples; this model takes "
                             f"{self.patch_len}")
        if mask is not None and self.mask_mode == "zeros":
            x = torch.where(mask.unsqueeze(-1), self.mask_token.to(x.dtype), x)
        spectrum = torch.fft.rfft(x.float(), dim=-1, norm="forward").abs()
        if self.spectral_input == "log":
            spectrum = torch.log(spectrum + 1e-4)
        spectrum = spectrum.to(x.dtype)
        tokens = self.temporal(x, valid) + self.spectral_dropout(self.spectral(spectrum))
        if self.linear is not None:
            tokens = tokens + self.linear(x)
        if mask is not None and self.mask_mode == "learned":
            tokens = torch.where(mask.unsqueeze(-1), self.mask_token.to(tokens.dtype), tokens)
        elif mask is not None and self.mask_mode == "mean":
            tokens = tokens + mask.unsqueeze(-1).to(tokens.dtype) * self.mask_token.to(tokens.dtype)
        return tokens

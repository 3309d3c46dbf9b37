"""Classifiers on the diffusion backbone's latents (EEGDM's downstream recipe, any montage).

Latents are (B, C, layers, patches, width): per channel, per block, per 1 s patch, the spread
of the block's gate activations (DiffusionDenoiser.latents). Two heads read them:

- ``LatentFusionHead``: per block, a few learned fusion tokens cross-attend to that block's
  latents of every real channel and patch; the tokens of all blocks then go through a small
  self-attention stack, are mean-pooled and classified. Nothing depends on the number of
  channels or patches. (The reference keeps 16 tokens per patch and 8 self-attention blocks,
  6.9M parameters; this is the same idea at a size that trains on a CPU.)
- ``PooledLatentHead``: the latents averaged over real channels and patches, a linear layer.

``LatentClassifier`` puts a frozen backbone in front of either head; in brainfm-bench it reads
the latents from a cache instead (``brainfm.models.latent_cache.cached_latent_windows``).
"""
from __future__ import annotations

import torch
from torch import nn

from .latent_cache import backbone_latents


class LatentFusionHead(nn.Module):
    def __init__(self, n_layers: int, width: int, n_outputs: int, d: int = 64,
                 n_tokens: int = 4, n_heads: int = 4, n_blocks: int = 2,
                 dropout: float = 0.1):
        super().__init__()
        self.norm_in = nn.LayerNorm(width)
        self.proj = nn.Linear(width, d)
        self.layer_embedding = nn.Parameter(torch.zeros(n_layers, 1, d))
        self.tokens = nn.Parameter(0.02 * torch.randn(n_layers, n_tokens, d))
        self.cross = nn.MultiheadAttention(d, n_heads, dropout=dropout, batch_first=True)
        block = nn.TransformerEncoderLayer(d, n_heads, 2 * d, dropout, batch_first=True,
                                           norm_first=True)
        self.mix = nn.TransformerEncoder(block, n_blocks, enable_nested_tensor=False)
        self.norm_out = nn.LayerNorm(d)
        self.out = nn.Linear(d, n_outputs)

    def forward(self, latents: torch.Tensor, channel_mask: torch.Tensor | None = None):
        """``latents`` (B, C, layers, N, width) -> logits (B, n_outputs)."""
        b, c, n_layers, n, _ = latents.shape
        keys = self.proj(self.norm_in(latents)) + self.layer_embedding       # (B,C,Ly,N,d)
        keys = keys.permute(0, 2, 1, 3, 4).reshape(b * n_layers, c * n, -1)
        pad = None
        if channel_mask is not None:  # True = ignore (nn.MultiheadAttention's convention)
            pad = (~channel_mask.bool())[:, None, :, None].expand(b, n_layers, c, n)
            pad = pad.reshape(b * n_layers, c * n)
        queries = self.tokens.repeat(b, 1, 1)                                  # (B*Ly, K, d)
        fused, _ = self.cross(queries, keys, keys, key_padding_mask=pad, need_weights=False)
        fused = self.mix(fused.reshape(b, n_layers * fused.shape[1], -1))
        return self.out(self.norm_out(fused.mean(dim=1)))


class PooledLatentHead(nn.Module):
    def __init__(self, n_layers: int, width: int, n_outputs: int):
        super().__init__()
        self.norm = nn.LayerNorm(n_layers * width)
        self.out = nn.Linear(n_layers * width, n_outputs)

    def forward(self, latents: torch.Tensor, channel_mask: torch.Tensor | None = None):
        return self.out(self.norm(pool_latents(latents, channel_mask)))


def pool_latents(latents: torch.Tensor, channel_mask: torch.Tensor | None = None):
    """(B, C, layers, N, width) -> (B, layers * width): mean over real channels and patches."""
    b, c = latents.shape[:2]
    w = (torch.ones(b, c, device=latents.device) if channel_mask is None
         else channel_mask.to(latents.dtype))
    summed = (latents.mean(dim=3) * w[:, :, None, None]).sum(dim=1)
    return (summed / w.sum(dim=1).clamp_min(1)[:, None, None]).flatten(1)


class LatentClassifier(nn.Module):
    """Frozen diffusion backbone -> latents (clean input, step ``t``) -> a trainable head.

    Called as ``model(x, sensors, channel_mask) -> logits`` like every benchmark classifier;
    ``input_transform`` maps the store's units to the backbone's (the staged mu-law). With
    ``reads_latents`` set (by ``cached_latent_windows``), ``x`` is already the backbone's
    latents (B, C, layers, patches, width), read from the latent cache, and the backbone is
    not called.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, input_transform=None,
                 t: int = 1):
        super().__init__()
        self.backbone = backbone.requires_grad_(False).eval()
        self.head, self.input_transform, self.t = head, input_transform, t
        self.patch_len = backbone.patch_len
        self.reads_latents = False

    def train(self, mode: bool = True):
        super().train(mode)
        self.backbone.eval()  # frozen: no dropout, and the EMA weights stay as they are
        return self

    def latents(self, x, sensors=None, channel_mask=None) -> torch.Tensor:
        return backbone_latents(self.backbone, x, sensors, channel_mask, t=self.t,
                                input_transform=self.input_transform)

    def forward(self, x, sensors=None, channel_mask=None) -> torch.Tensor:
        if not self.reads_latents:
            return self.head(self.latents(x, sensors, channel_mask), channel_mask)
        expected = (len(self.backbone.blocks), self.backbone.d_model)
        if x.dim() != 5 or (x.shape[2], x.shape[4]) != expected:
            raise ValueError(f"LatentClassifier reads cached latents (B, C, {expected[0]} "
                             f"layers, patches, {expected[1]} width), got {tuple(x.shape)}; "
                             "feed it the batches of cached_latent_windows, or set "
                             "reads_latents = False to pass signals")
        return self.head(x, channel_mask)


__all__ = ["LatentClassifier", "LatentFusionHead", "PooledLatentHead", "pool_latents"]

"""The criss-cross transformer (CBraMod-style): spatial and temporal attention side by side.

Each layer splits the model width in two: one half attends across channels within a patch
(spatial), the other across patches within a channel (temporal); the halves are concatenated
and share one feed-forward block. Pre-LN residuals, torch's scaled_dot_product_attention, and
padded channels masked out of spatial attention.

Read top to bottom: Attention -> CrissCrossLayer -> CrissCrossTransformer.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .contract import ContractMixin
from .dropout import Dropout

from .embedding import PatchEmbedding
from .fill import visible_channel_mean
from .heads import ReconstructionHead, build_head
from .positional import build_positional


class Attention(nn.Module):
    """Multi-head self-attention with a packed qkv projection (nn.MultiheadAttention layout)."""

    def __init__(self, dim: int, n_heads: int, dropout: float = 0.0):
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"width {dim} does not split into {n_heads} heads")
        self.n_heads, self.dropout = n_heads, dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, key_valid: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` (batch, length, dim); ``key_valid`` (batch, length) bool or None."""
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.n_heads, d // self.n_heads).unbind(2)
        mask = None if key_valid is None else key_valid[:, None, None, :]
        y = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=mask,
            dropout_p=self.dropout if self.training else 0.0)
        return self.out(y.transpose(1, 2).reshape(b, n, d))


class CrissCrossLayer(nn.Module):
    def __init__(self, d_model: int = 200, n_heads: int = 8, d_ff: int = 800,
                 dropout: float = 0.1, spatial_width: int | None = None):
        super().__init__()
        self.ds = spatial_width if spatial_width is not None else d_model // 2
        dt = d_model - self.ds
        self.norm_attn = nn.LayerNorm(d_model)
        self.spatial = Attention(self.ds, n_heads // 2, dropout)
        self.temporal = Attention(dt, n_heads - n_heads // 2, dropout)
        self.drop_attn = Dropout(dropout)
        self.norm_ffn = nn.LayerNorm(d_model)
        self.ffn_in = nn.Linear(d_model, d_ff)
        self.ffn_out = nn.Linear(d_ff, d_model)
        self.drop_ffn_hidden = Dropout(dropout)
        self.drop_ffn = Dropout(dropout)

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` (B, C, N, D); ``valid`` (B, C) marks real (not padded) channels."""
        b, c, n, d = x.shape
        h = self.norm_attn(x)
        hs = h[..., :self.ds].transpose(1, 2).reshape(b * n, c, self.ds)
        key_valid = None if valid is None else valid.repeat_interleave(n, dim=0)
        s = self.spatial(hs, key_valid).view(b, n, c, self.ds).transpose(1, 2)
        ht = h[..., self.ds:].reshape(b * c, n, d - self.ds)
        t = self.temporal(ht).view(b, c, n, d - self.ds)
        x = x + self.drop_attn(torch.cat([s, t], dim=-1))
        hidden = self.drop_ffn_hidden(F.gelu(self.ffn_in(self.norm_ffn(x))))
        return x + self.drop_ffn(self.ffn_out(hidden))


class CrissCrossTransformer(ContractMixin, nn.Module):
    """Criss-cross backbone with a replaceable head.

    The signature follows the braindecode convention (``n_chans``, ``n_outputs``,
    ``n_times``, ``sfreq``, ``chs_info``); none of them fixes a shape: any number of
    channels and patches goes through. ``forward`` takes (B, C, N, P) patches or (B, C, T)
    signals (T a multiple of ``patch_len``) and returns the head's output;
    ``forward_features`` returns per-patch features (B, C, N, D).
    """

    def __init__(self, n_chans: int | None = None, n_outputs: int | None = None,
                 n_times: int | None = None, sfreq: float = 200.0, chs_info=None,
                 patch_len: int = 200, d_model: int = 200, n_layers: int = 12,
                 n_heads: int = 8, d_ff: int = 800, dropout: float = 0.1,
                 positional: str = "sensor", acpe_kernel=(19, 7), mask_token: str = "zeros",
                 head: str = "reconstruction", init: str = "cbramod",
                 spectral_input: str = "abs", amplitude_norm: str = "none",
                 linear_branch: bool = False):
        super().__init__()
        if amplitude_norm not in AMPLITUDE_NORMS:
            raise ValueError(f"amplitude_norm={amplitude_norm!r}; use one of {AMPLITUDE_NORMS}")
        self.config = dict(n_chans=n_chans, n_outputs=n_outputs, n_times=n_times, sfreq=sfreq,
                           patch_len=patch_len, d_model=d_model, n_layers=n_layers,
                           n_heads=n_heads, d_ff=d_ff, dropout=dropout, positional=positional,
                           acpe_kernel=list(acpe_kernel), mask_token=mask_token, head=head,
                           init=init, spectral_input=spectral_input,
                           amplitude_norm=amplitude_norm, linear_branch=linear_branch)
        self.chs_info = chs_info
        self.patch_len, self.d_model, self.positional_kind = patch_len, d_model, positional
        self.amplitude_norm = amplitude_norm
        self.patch_embed = PatchEmbedding(patch_len, d_model, dropout, mask_token=mask_token,
                                          spectral_input=spectral_input,
                                          linear_branch=linear_branch)
        # the amplitude a channel was divided by, as a token feature: the network works on
        # unit-scale signals yet still knows how large each channel was
        self.scale_embed = nn.Linear(1, d_model) if amplitude_norm == "channel" else None
        # mask_token="mean": how much of the neighbours' mean each hidden patch keeps, learned
        # per token (starts at 1: the visible-channel mean; 0 where neighbours mislead)
        self.fill_gate = nn.Linear(d_model, 1) if mask_token == "mean" else None
        self.pos_enc = build_positional(positional, d_model, acpe_kernel)
        self.layers = nn.ModuleList(CrissCrossLayer(d_model, n_heads, d_ff, dropout)
                                    for _ in range(n_layers))
        self.head = build_head(head, d_model, patch_len=patch_len, n_outputs=n_outputs,
                               n_chans=n_chans, n_patches=(n_times or 0) // patch_len or None)
        if init not in ("cbramod", "brainfm", "torch"):
            raise ValueError(f"init={init!r}; use cbramod, brainfm or torch")
        if init in ("cbramod", "brainfm"):
            self.apply(_cbramod_init)
        if self.fill_gate is not None:
            nn.init.zeros_(self.fill_gate.weight)
            nn.init.ones_(self.fill_gate.bias)
        if init == "brainfm" and hasattr(self.head, "proj"):
            # start as the all-zeros predictor: early steps then improve on it instead of
            # first undoing a random projection ~10x larger than standardised EEG
            nn.init.normal_(self.head.proj.weight, std=1e-3)
            nn.init.zeros_(self.head.proj.bias)

    def channel_encoding(self) -> str:
        return channel_encoding(self.config)

    # ---- features ---------------------------------------------------------------------------
    def _as_patches(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            return x
        if x.dim() == 3 and x.shape[-1] % self.patch_len == 0:
            return x.reshape(x.shape[0], x.shape[1], -1, self.patch_len)
        raise ValueError(f"expected (B, C, N, {self.patch_len}) patches or (B, C, T) with T a "
                         f"multiple of {self.patch_len}; got {tuple(x.shape)}")

    def forward_features(self, x: torch.Tensor, sensors: torch.Tensor | None = None,
                         channel_mask: torch.Tensor | None = None,
                         mask: torch.Tensor | None = None) -> torch.Tensor:
        """Per-patch features (B, C, N, D). ``mask`` (B, C, N) bool marks patches to hide."""
        return self.encode(x, sensors, channel_mask, mask)[0]

    def forward_layers(self, x: torch.Tensor, sensors: torch.Tensor | None = None,
                       channel_mask: torch.Tensor | None = None,
                       mask: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Every layer's per-patch features, bottom to top: ``n_layers`` tensors (B, C, N, D).

        The last one is :meth:`forward_features`. Intermediate layers are what per-layer
        probes read and what latent-prediction targets average."""
        layers: list[torch.Tensor] = []
        self.encode(x, sensors, channel_mask, mask, collect=layers)
        return layers

    def encode(self, x, sensors=None, channel_mask=None, mask=None, collect: list | None = None):
        """(features, per-channel scale or None, the input as filled or None); ``collect``
        receives each layer's output when given."""
        x = self._as_patches(x)
        valid = None if channel_mask is None or bool(channel_mask.all()) else channel_mask
        scale = None
        if self.amplitude_norm == "channel":
            scale = visible_rms(x, mask, channel_mask)
            x = x / scale
        filled = None
        if self.patch_embed.mask_mode == "mean" and mask is not None:
            fill = visible_channel_mean(x, mask, channel_mask)
            x = filled = torch.where(mask[..., None], fill, x)
        tokens = self.patch_embed(x, mask=mask, valid=valid)
        if scale is not None:
            tokens = tokens + self.scale_embed(torch.log(scale))
        tokens = self.pos_enc(tokens, sensors, valid)
        for layer in self.layers:
            tokens = layer(tokens, valid)
            if collect is not None:
                collect.append(tokens)
        return tokens, scale, filled

    def forward(self, x: torch.Tensor, sensors: torch.Tensor | None = None,
                channel_mask: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        feats, scale, filled = self.encode(x, sensors, channel_mask, mask)
        return self.apply_head(feats, scale, filled, channel_mask)

    def apply_head(self, feats: torch.Tensor, scale: torch.Tensor | None,
                   filled: torch.Tensor | None, channel_mask=None) -> torch.Tensor:
        """The head on :meth:`encode`'s outputs (what ``forward`` returns), so a task that
        also needs the features runs the backbone once."""
        out = self.head(feats, channel_mask)
        if isinstance(self.head, ReconstructionHead):
            if filled is not None:  # the head learns the correction to the gated guess
                out = out + self.fill_gate(feats) * filled
            if scale is not None:
                out = out * scale   # reconstructions back in the input's units
        return out

    def reset_head(self, head: str, n_outputs: int | None = None, n_chans: int | None = None,
                   n_patches: int | None = None) -> None:
        """Swap the head (e.g. reconstruction -> pooled) keeping the backbone; ``flatten``
        also needs the montage size and patches per window."""
        self.head = build_head(head, self.d_model, patch_len=self.patch_len,
                               n_outputs=n_outputs, n_chans=n_chans, n_patches=n_patches)
        self.config.update(head=head, n_outputs=n_outputs)
        if head == "flatten":
            self.config.update(n_chans=n_chans, n_times=n_patches * self.patch_len)


AMPLITUDE_NORMS = ("none", "channel")


def channel_encoding(config: dict) -> str:
    """How a criss-cross model of ``config`` tells channels apart: by their place in one
    channel order when its positional encoding (ACPE convolution) or head (flatten) depends
    on it, else by sensor features (any montage)."""
    if config.get("positional") == "acpe" or config.get("head") == "flatten":
        return "channel_order"
    return "sensor"


def visible_rms(x: torch.Tensor, mask: torch.Tensor | None = None,
                channel_mask: torch.Tensor | None = None, floor: float = 1e-3) -> torch.Tensor:
    """(B, C, 1, 1) root-mean-square of each channel over its visible patches.

    Computed from what the model may see only (never a hidden patch), so dividing by it
    leaks nothing; a channel with every patch hidden gets its sample's visible RMS.
    """
    b, c, n, p = x.shape
    visible = torch.ones(b, c, n, dtype=torch.bool, device=x.device) if mask is None else ~mask
    if channel_mask is not None:
        visible = visible & channel_mask[:, :, None].to(torch.bool)
    w = visible.to(x.dtype)[..., None]
    power = (x.float() ** 2 * w).sum(dim=(2, 3))                # (B, C)
    count = w.sum(dim=(2, 3))                                   # visible patches (B, C)
    sample = power.sum(dim=1, keepdim=True) / (count.sum(dim=1, keepdim=True) * p).clamp_min(1)
    per_channel = torch.where(count > 0, power / (count * p).clamp_min(1), sample)
    return per_channel.clamp_min(floor ** 2).sqrt().to(x.dtype)[:, :, None, None]


def _cbramod_init(module: nn.Module) -> None:
    """CBraMod's initialisation: Kaiming-normal (fan_out) linear weights, except attention's
    packed q/k/v projection, which starts as nn.MultiheadAttention's (Xavier, zero bias)."""
    if isinstance(module, Attention):
        nn.init.xavier_uniform_(module.qkv.weight)
        nn.init.zeros_(module.qkv.bias)
        nn.init.zeros_(module.out.bias)
    elif isinstance(module, nn.Linear) and not _is_qkv(module):
        nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")


def _is_qkv(linear: nn.Linear) -> bool:
    return linear.out_features == 3 * linear.in_features


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = ["Attention", "CrissCrossLayer", "CrissCrossTransformer", "count_parameters"]

"""Reading state dicts saved by the original CBraMod code into the ``cbramod`` config.

The published checkpoint is a plain state dict of the original pretraining model (patch
embedding, 12 criss-cross layers, a 200 -> 200 reconstruction projection). Only the names
differ from brainfm's; shapes and numerics are the same.
"""
from __future__ import annotations

import re

import torch

#: The published architecture (DESIGN.md): 4,924,000 parameters.
CBRAMOD_CONFIG = dict(patch_len=200, d_model=200, n_layers=12, n_heads=8, d_ff=800,
                      dropout=0.1, positional="acpe", acpe_kernel=[19, 7], mask_token="zeros",
                      head="reconstruction", sfreq=200.0)

_RULES = [  # original name pattern -> brainfm name
    (r"patch_embedding\.mask_encoding", "patch_embed.mask_token"),
    (r"patch_embedding\.positional_encoding\.0\.(weight|bias)", r"pos_enc.conv.\1"),
    (r"patch_embedding\.proj_in\.0\.(weight|bias)", r"patch_embed.temporal.conv0.\1"),
    (r"patch_embedding\.proj_in\.1\.(weight|bias)", r"patch_embed.temporal.norm0.\1"),
    (r"patch_embedding\.proj_in\.3\.(weight|bias)", r"patch_embed.temporal.conv1.\1"),
    (r"patch_embedding\.proj_in\.4\.(weight|bias)", r"patch_embed.temporal.norm1.\1"),
    (r"patch_embedding\.proj_in\.6\.(weight|bias)", r"patch_embed.temporal.conv2.\1"),
    (r"patch_embedding\.proj_in\.7\.(weight|bias)", r"patch_embed.temporal.norm2.\1"),
    (r"patch_embedding\.spectral_proj\.0\.(weight|bias)", r"patch_embed.spectral.\1"),
    (r"encoder\.layers\.(\d+)\.self_attn_s\.in_proj_(weight|bias)", r"layers.\1.spatial.qkv.\2"),
    (r"encoder\.layers\.(\d+)\.self_attn_s\.out_proj\.(weight|bias)", r"layers.\1.spatial.out.\2"),
    (r"encoder\.layers\.(\d+)\.self_attn_t\.in_proj_(weight|bias)", r"layers.\1.temporal.qkv.\2"),
    (r"encoder\.layers\.(\d+)\.self_attn_t\.out_proj\.(weight|bias)",
     r"layers.\1.temporal.out.\2"),
    (r"encoder\.layers\.(\d+)\.linear1\.(weight|bias)", r"layers.\1.ffn_in.\2"),
    (r"encoder\.layers\.(\d+)\.linear2\.(weight|bias)", r"layers.\1.ffn_out.\2"),
    (r"encoder\.layers\.(\d+)\.norm1\.(weight|bias)", r"layers.\1.norm_attn.\2"),
    (r"encoder\.layers\.(\d+)\.norm2\.(weight|bias)", r"layers.\1.norm_ffn.\2"),
    (r"proj_out\.0\.(weight|bias)", r"head.proj.\1"),
]
_COMPILED = [(re.compile(f"^{a}$"), b) for a, b in _RULES]
_PREFIXES = ("module.", "backbone.", "model.")


def _strip(key: str) -> str:
    for prefix in _PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix):]
    return key


def is_cbramod_state_dict(state: dict) -> bool:
    """True for a state dict with the original CBraMod's parameter names."""
    keys = {_strip(k) for k in state}
    return "patch_embedding.proj_in.0.weight" in keys and any(
        k.startswith("encoder.layers.0.self_attn_s.") for k in keys)


def convert_cbramod_state_dict(state: dict) -> dict[str, torch.Tensor]:
    """Rename every key; unknown keys raise (nothing is silently dropped)."""
    out = {}
    for key, value in state.items():
        name = _strip(key)
        for pattern, repl in _COMPILED:
            if pattern.match(name):
                out[pattern.sub(repl, name)] = value
                break
        else:
            raise KeyError(f"CBraMod state dict key {key!r} has no brainfm counterpart")
    return out


def cbramod_n_layers(state: dict) -> int:
    idx = {int(m.group(1)) for k in state
           if (m := re.match(r"^encoder\.layers\.(\d+)\.", _strip(k)))}
    return max(idx) + 1 if idx else 0

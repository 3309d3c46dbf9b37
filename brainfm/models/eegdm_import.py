"""Reading state dicts saved by the original EEGDM code (github jhpuah/EEGDM) into brainfm's
:class:`~brainfm.models.diffusion_denoiser.DiffusionDenoiser`.

The reference's denoiser ("Wavenet") has the same blocks and numerics; names differ, two
tensors carry a leading axis of 1, and its channel identity is a table of 22 channel indices,
so an imported model uses ``channel_conditioning="index"``. A Lightning checkpoint of the
reference holds the online weights under ``model.`` and the EMA copy under
``ema.ema_model.``; the EMA copy (what the reference uses downstream) is taken when present.
"""
from __future__ import annotations

import re

import torch

_RULES = [  # reference name pattern -> brainfm name
    (r"in_layer\.0\.(weight|bias)", r"input.0.\1"),
    (r"layers\.(\d+)\.cond_linear\.(weight|bias)", r"blocks.\1.cond.\2"),
    (r"layers\.(\d+)\.prenorm1\.(weight|bias)", r"blocks.\1.norm.\2"),
    (r"layers\.(\d+)\.pre_layer\.(weight|bias)", r"blocks.\1.expand.\2"),
    (r"layers\.(\d+)\.layer\.D", r"blocks.\1.ssm.d"),
    (r"layers\.(\d+)\.layer\.kernel\.inv_dt", r"blocks.\1.ssm.log_dt"),
    (r"layers\.(\d+)\.layer\.kernel\.A_real", r"blocks.\1.ssm.log_neg_a_real"),
    (r"layers\.(\d+)\.layer\.kernel\.A_imag", r"blocks.\1.ssm.a_imag"),
    (r"layers\.(\d+)\.layer\.kernel\.B", r"blocks.\1.ssm.b"),
    (r"layers\.(\d+)\.layer\.kernel\.C", r"blocks.\1.ssm.c"),
    (r"layers\.(\d+)\.linear_next\.(weight|bias)", r"blocks.\1.residual.\2"),
    (r"layers\.(\d+)\.linear_skip\.(weight|bias)", r"blocks.\1.skip.\2"),
    (r"out_layer\.0\.(weight|bias)", r"out_hidden.\1"),
    (r"out_layer\.2\.(weight|bias)", r"out.\1"),
    (r"t_embed_in\.(0|2)\.(weight|bias)", r"time_mlp.\1.\2"),
    (r"label_embed\.weight", r"channel_code.weight"),
    (r"label_embed_in\.(0|2)\.(weight|bias)", r"channel_mlp.\1.\2"),
]
_COMPILED = [(re.compile(f"^{a}$"), b) for a, b in _RULES]
_SQUEEZE = (".ssm.d", ".ssm.b")  # (1, H) -> (H,), (1, H, n, 2) -> (H, n, 2)


def _unwrap(state: dict) -> dict:
    """The denoiser's own keys: the EMA copy of a Lightning checkpoint if there is one."""
    for prefix in ("ema.ema_model.", "model.", "module."):
        sub = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if sub:
            return sub
    return state


def is_eegdm_state_dict(state: dict) -> bool:
    """True for a state dict with the reference EEGDM denoiser's parameter names."""
    keys = _unwrap(state)
    return "in_layer.0.weight" in keys and "layers.0.layer.kernel.A_real" in keys


def convert_eegdm_state_dict(state: dict) -> dict[str, torch.Tensor]:
    """Rename (and squeeze) every key; unknown keys raise, nothing is silently dropped."""
    out = {}
    for key, value in _unwrap(state).items():
        for pattern, repl in _COMPILED:
            if pattern.match(key):
                name = pattern.sub(repl, key)
                out[name] = value.squeeze(0) if name.endswith(_SQUEEZE) else value
                break
        else:
            raise KeyError(f"EEGDM state dict key {key!r} has no brainfm counterpart (local "
                           "conditioning and self-gated blocks are not supported)")
    return out


def eegdm_config(state: dict) -> dict:
    """The DiffusionDenoiser arguments that fit a reference state dict."""
    s = _unwrap(state)
    n_layers = 1 + max(int(m.group(1)) for k in s if (m := re.match(r"^layers\.(\d+)\.", k)))
    return dict(d_model=s["in_layer.0.weight"].shape[0],
                d_state=2 * s["layers.0.layer.kernel.A_real"].shape[1], n_layers=n_layers,
                d_cond=s["layers.0.cond_linear.weight"].shape[1],
                d_time_embed=s["t_embed_in.0.weight"].shape[1], channel_conditioning="index",
                n_channel_ids=s["label_embed.weight"].shape[0], sfreq=200.0, patch_len=200)


__all__ = ["convert_eegdm_state_dict", "eegdm_config", "is_eegdm_state_dict"]

"""Writing a ``cbramod``-config model back in the original CBraMod state-dict layout, so the
original code (and libraries that load CBraMod weights) can use weights brainfm trained or
fine-tuned.

The renaming is the exact inverse of :mod:`brainfm.models.cbramod_import` (its rules are
inverted here, not restated), and only a model whose architecture the original code can
build is written: every setting that changes weights or numerics must equal CBraMod's.
"""
from __future__ import annotations

import io
import re
from pathlib import Path

import torch

from ..errors import CheckpointError
from ..data.store import atomic_write_bytes
from ..models.cbramod_import import _RULES, CBRAMOD_CONFIG

#: Settings the original code has no switch for (they change weights or numerics).
_FIXED = {**{k: v for k, v in CBRAMOD_CONFIG.items() if k not in ("n_layers", "dropout",
                                                                  "sfreq")},
          "spectral_input": "abs", "amplitude_norm": "none", "linear_branch": False}

_GROUP = re.compile(r"\((?:\\d\+|[A-Za-z0-9_|]+)\)")


def _invert(original: str, ours: str) -> tuple[re.Pattern, str]:
    """(pattern on brainfm names, replacement giving the original name) for one import rule."""
    groups = _GROUP.findall(original)
    pattern = re.escape(ours)
    for k, group in enumerate(groups, start=1):
        pattern = pattern.replace(re.escape(f"\\{k}"), group)
    repl, k = original, 0

    def number(_match):
        nonlocal k
        k += 1
        return f"\\{k}"

    repl = _GROUP.sub(number, repl).replace("\\.", ".")
    return re.compile(f"^{pattern}$"), repl


_INVERSE = [_invert(a, b) for a, b in _RULES]


def cbramod_incompatibilities(config: dict) -> list[str]:
    """The architecture settings that keep ``config`` from the original CBraMod layout."""
    out = []
    for key, want in _FIXED.items():
        have = config.get(key)
        if isinstance(want, (list, tuple)):
            have, want = list(have or []), list(want)
        if have != want:
            out.append(f"{key}={have!r} (CBraMod: {want!r})")
    return out


def to_cbramod_state_dict(model) -> dict[str, torch.Tensor]:
    """The model's weights under the original CBraMod names (a plain tensor dict)."""
    config = dict(getattr(model, "config", {}))
    wrong = cbramod_incompatibilities(config)
    if wrong:
        raise CheckpointError("this model cannot be written in the original CBraMod layout: "
                              + "; ".join(wrong) + " -> only models built with the cbramod "
                              "configuration (model=cbramod) can")
    out = {}
    for name, value in model.state_dict().items():
        for pattern, repl in _INVERSE:
            if pattern.match(name):
                out[pattern.sub(repl, name)] = value.detach().cpu().clone()
                break
        else:
            raise CheckpointError(f"weight {name!r} has no counterpart in the original CBraMod "
                                  "layout (a head other than reconstruction?) -> reset the "
                                  "head to 'reconstruction' before writing it back")
    return out


def save_cbramod(model, path) -> Path:
    """Write the original-layout state dict with ``torch.save`` (what the original code
    ``torch.load``s); tensors only, so it also loads with ``weights_only=True``."""
    path = Path(path)
    buffer = io.BytesIO()
    torch.save(to_cbramod_state_dict(model), buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return path


__all__ = ["cbramod_incompatibilities", "save_cbramod", "to_cbramod_state_dict"]

"""Loading models from files without executing pickled code.

Every file is read with ``torch.load(weights_only=True)``: tensors and plain containers only.
Recognised formats: brainfm model files (``{"format": "brainfm-model/1", "family": ...,
"config": ..., "state_dict": ...}``; no family means criss-cross) and state dicts saved by the
original CBraMod or EEGDM code.
"""
from __future__ import annotations

import io
from pathlib import Path

import torch

from .data.store import atomic_write_bytes
from .errors import BrainfmError
from .models.cbramod_import import (CBRAMOD_CONFIG, cbramod_n_layers,
                                    convert_cbramod_state_dict, is_cbramod_state_dict)
from .models.criss_cross import CrissCrossTransformer
from .models.eegdm_import import convert_eegdm_state_dict, eegdm_config, is_eegdm_state_dict
from .models.registry import build_model, family_of

MODEL_FORMAT = "brainfm-model/1"


class CheckpointError(BrainfmError, ValueError):
    """A file is not a model brainfm can load; the message names it and says why."""


def save_model(model: CrissCrossTransformer, path, extra: dict | None = None) -> Path:
    """Write a self-describing model file: architecture config, weights, and ``extra``
    (e.g. the preprocessing contract) as plain data."""
    path = Path(path)
    payload = {"format": MODEL_FORMAT, "family": family_of(model), "config": dict(model.config),
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
               "extra": extra or {}}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def read_model_file(path, map_location="cpu") -> tuple[dict, dict, dict]:
    """(architecture config, state dict in brainfm's layout, extra) from a brainfm model file
    or an original CBraMod or EEGDM state dict, without building a model; ``extra["family"]``
    names the model family the config builds (brainfm.models.registry)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such file")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise CheckpointError(f"{path}: not a tensor-only checkpoint ({type(err).__name__}: "
                              f"{err}); brainfm never unpickles code -> export the weights "
                              "with model.state_dict()") from err
    if isinstance(obj, dict) and obj.get("format") == MODEL_FORMAT:
        return dict(obj["config"]), obj["state_dict"], {
            "family": obj.get("family", "criss_cross"), **dict(obj.get("extra", {}))}
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if isinstance(state, dict) and is_cbramod_state_dict(state):
        config = {**CBRAMOD_CONFIG, "n_layers": cbramod_n_layers(state)}
        return config, convert_cbramod_state_dict(state), {"source_format": "cbramod"}
    if isinstance(state, dict) and is_eegdm_state_dict(state):
        return (eegdm_config(state), convert_eegdm_state_dict(state),
                {"source_format": "eegdm", "family": "diffusion"})
    raise CheckpointError(f"{path}: neither a brainfm model file nor a CBraMod or EEGDM "
                          "state dict -> save models with brainfm.checkpoint.save_model")


def read_model_config(path) -> dict:
    """The architecture a model file describes (to build the same model untrained)."""
    return read_model_file(path)[0]


def from_pretrained(path, map_location="cpu", **overrides) -> CrissCrossTransformer:
    """A model (criss-cross or diffusion, as the file says) from a brainfm model file or an
    original CBraMod or EEGDM state dict.

    ``overrides`` change constructor arguments (e.g. ``dropout=0.0``); the weights must
    still fit. Original CBraMod files give the ``cbramod`` configuration, whose ``forward``
    on (B, C, N, 200) returns what the original's forward returns.
    """
    config, state, extra = read_model_file(path, map_location)
    extra = dict(extra)
    model = build_model(extra.pop("family", None), {**config, **overrides})
    model.load_state_dict(state)
    model.extra = extra
    return model

"""Loading models from files without executing pickled code.

Recognised formats, every one read without unpickling code:

- checkpoint folders (``model.safetensors`` + ``config.json`` + ``README.md``, brainfm.hub),
  read with safetensors after checking the weights' sha256;
- brainfm model files (``{"format": "brainfm-model/1", "family": ..., "config": ...,
  "state_dict": ...}``; no family means criss-cross), the format before folders;
- Lightning ``.ckpt`` files written by brainfm-pretrain (the backbone's weights; the data
  contract from the run folder they lie in);
- state dicts saved by the original CBraMod or EEGDM code.

Every ``.pt``/``.pth``/``.ckpt`` file is read with ``torch.load(weights_only=True)``:
tensors and plain containers only.
"""
from __future__ import annotations

import io
import warnings
import zipfile
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


def family_and_config_of(model) -> tuple[str, dict]:
    """(registered family, architecture config) of a model instance (torch.compile unwrapped)."""
    model = getattr(model, "_orig_mod", model)
    return family_of(model), dict(model.config)


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


def read_model_file(path, map_location="cpu", allow_nonfinite: bool = False
                    ) -> tuple[dict, dict, dict]:
    """(architecture config, state dict in brainfm's layout, extra) from any format brainfm
    loads (a checkpoint folder, a model file, a brainfm Lightning ``.ckpt``, an original
    CBraMod or EEGDM state dict), without building a model; ``extra["family"]`` names the
    model family the config builds (brainfm.models.registry) and ``extra["contract"]`` the
    data contract (config.json's, or one derived from what the file says).

    Weights holding NaN or Inf are refused (``allow_nonfinite=True``: a warning instead)."""
    config, state, extra = _read_model_file(Path(path), map_location)
    _check_finite(path, state, allow_nonfinite)
    return config, state, extra


def check_archive(path: Path) -> None:
    """torch.save writes a zip archive whose directory sits at its end and which records a
    CRC-32 per member: a file cut short has no directory (torch's own error says only
    "Invalid argument"), and a changed byte fails its member's CRC (torch does not check)."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head != b"PK\x03\x04":
        return
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: the file is truncated or damaged ({path.stat().st_size}"
                              " bytes, the end of its archive is missing) -> copy or download "
                              "it again, or re-export it")
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        bad = f"? ({err})"
    if bad is not None:
        raise CheckpointError(f"{path}: damaged: its archive member {bad} fails its own CRC "
                              "check (the bytes changed after it was written) -> use another "
                              "copy, an earlier checkpoint, or re-export it")


def _check_finite(path, state: dict, allow: bool) -> None:
    bad = [k for k, v in state.items()
           if torch.is_tensor(v) and v.is_floating_point() and not torch.isfinite(v).all()]
    if not bad:
        return
    text = (f"{path}: {len(bad)} weight tensor(s) hold NaN or Inf ({', '.join(bad[:5])}"
            f"{', ...' if len(bad) > 5 else ''})")
    if not allow:
        raise CheckpointError(f"{text}; the model would output NaN -> use an earlier "
                              "checkpoint, or pass allow_nonfinite=True to load it anyway")
    warnings.warn(text, RuntimeWarning, stacklevel=3)


def _read_model_file(path: Path, map_location) -> tuple[dict, dict, dict]:
    from .hub.config import build_contract, extra_from_config
    from .hub.folder import checkpoint_folder_of, read_folder

    folder = checkpoint_folder_of(path)
    if folder is not None:
        family, config, state, cfg = read_folder(folder, map_location)
        return config, state, {"family": family, **extra_from_config(cfg),
                               "contract": cfg.get("contract") or {}}
    config, state, extra = _read_file(path, map_location)
    family = extra.get("family") or "criss_cross"
    extra.setdefault("contract", build_contract(family, config, extra))
    return config, state, extra


def _read_file(path: Path, map_location) -> tuple[dict, dict, dict]:
    if path.is_dir():
        raise CheckpointError(f"{path}: a folder without config.json; a checkpoint folder "
                              "holds model.safetensors, config.json and README.md -> point at "
                              "such a folder, a model file, or a run's last.ckpt")
    if not path.exists():
        raise CheckpointError(f"{path}: no such file")
    if path.suffix == ".safetensors":
        raise CheckpointError(f"{path}: a safetensors file without its config.json beside it; "
                              "brainfm needs the config to know the architecture and data "
                              "contract -> keep the checkpoint folder together")
    check_archive(path)
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise CheckpointError(f"{path}: not a tensor-only checkpoint ({type(err).__name__}: "
                              f"{err}); brainfm never unpickles code -> export the weights "
                              "with model.state_dict()") from err
    if isinstance(obj, dict) and obj.get("format") == MODEL_FORMAT:
        _check_model_file_fields(path, obj)
        return dict(obj["config"]), obj["state_dict"], {
            "family": obj.get("family", "criss_cross"), **dict(obj.get("extra", {}))}
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if isinstance(state, dict) and is_cbramod_state_dict(state):
        config = {**CBRAMOD_CONFIG, "n_layers": cbramod_n_layers(state)}
        from .data.standardise import StandardiseConfig

        # brainfm's default contract is CBraMod's: 200 Hz, 0.3-75 Hz, units of 100 uV
        return config, convert_cbramod_state_dict(state), {
            "source_format": "cbramod", "standardise": StandardiseConfig().as_dict(),
            "sfreq": 200.0}
    if isinstance(state, dict) and is_eegdm_state_dict(state):
        return (eegdm_config(state), convert_eegdm_state_dict(state),
                {"source_format": "eegdm", "family": "diffusion"})
    if isinstance(obj, dict) and "pytorch-lightning_version" in obj:
        from .hub.lightning import read_lightning_checkpoint

        return read_lightning_checkpoint(path, obj)
    raise CheckpointError(f"{path}: neither a brainfm model file nor a CBraMod or EEGDM "
                          "state dict -> save models with brainfm.checkpoint.save_model")


def _check_model_file_fields(path: Path, obj: dict) -> None:
    wrong = [f"{key} is {type(obj.get(key)).__name__}, not {kind}"
             for key, kind in (("config", "dict"), ("state_dict", "dict"), ("extra", "dict"))
             if not isinstance(obj.get(key, {}), dict)]
    if not isinstance(obj.get("family", ""), str):
        wrong.append(f"family is {type(obj['family']).__name__}, not str")
    if wrong:
        raise CheckpointError(f"{path}: malformed model file ({'; '.join(wrong)}) -> use the "
                              "original file, or save the model again with save_model")


def read_model_config(path) -> dict:
    """The architecture a model file describes (to build the same model untrained)."""
    return read_model_file(path)[0]


class _TooManyParameters(Exception):
    pass


def _probe_model(family, config: dict, limit: int):
    """The model ``config`` builds, on the meta device (shapes only, no memory), stopped as
    soon as its parameters outnumber ``limit``: a config asking for 60000 layers is refused
    after building one layer more than the file holds, not after building 60000."""
    from torch.nn.modules.module import register_module_parameter_registration_hook

    count = 0

    def on_parameter(module, name, param):
        nonlocal count
        count += param.numel() if param is not None else 0
        if count > limit:
            raise _TooManyParameters(count)

    handle = register_module_parameter_registration_hook(on_parameter)
    try:
        with torch.device("meta"):
            return build_model(family, config)
    finally:
        handle.remove()


def _check_architecture(path, family, config: dict, state: dict) -> None:
    """The config must describe the weights in the file before memory is allocated for it: a
    small file whose config asks for huge layers is refused, not built."""
    n_weights = sum(v.numel() for v in state.values() if torch.is_tensor(v))
    for key, value in config.items():
        if isinstance(value, int) and not isinstance(value, bool) and value > max(n_weights,
                                                                                   1 << 16):
            raise CheckpointError(f"{path}: config {key}={value} exceeds the {n_weights} "
                                  "weights the file holds -> the file's config is damaged")
    try:
        probe = _probe_model(family, config, n_weights)
    except _TooManyParameters as err:
        raise CheckpointError(f"{path}: the config builds more than {err.args[0]} parameters, "
                              f"the file holds {n_weights} (refused before allocating "
                              "anything) -> the file's config is damaged, or an override "
                              "changed the architecture") from None
    except Exception as err:
        raise CheckpointError(f"{path}: its config does not build a model ({type(err).__name__}:"
                              f" {err})") from err
    expected = {k: tuple(v.shape) for k, v in probe.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in state.items() if torch.is_tensor(v)}
    wrong = [f"{k}: config {expected.get(k)} vs file {found.get(k)}"
             for k in sorted(set(expected) | set(found)) if expected.get(k) != found.get(k)]
    if wrong:
        raise CheckpointError(f"{path}: the config does not describe the weights in the file "
                              f"({len(wrong)} tensors differ: {'; '.join(wrong[:3])}) -> the "
                              "file is damaged, or an override changed the architecture")


def from_pretrained(path, map_location="cpu", allow_nonfinite: bool = False,
                    allow_interpolation: bool = False, **overrides) -> CrissCrossTransformer:
    """A model (criss-cross or diffusion, as the file says) from a checkpoint folder, a
    brainfm model file, a brainfm Lightning ``.ckpt``, or an original CBraMod or EEGDM state
    dict. The model carries its data contract (``model.contract``, used by ``prepare`` and
    ``embed``) and what the file says of its training (``model.extra``);
    ``allow_interpolation`` is the default of ``prepare``/``embed`` for channels a
    fixed-montage checkpoint needs and a recording lacks.

    ``overrides`` change constructor arguments (e.g. ``dropout=0.0``); the weights must
    still fit, and are checked against the config before anything is allocated. Weights with
    NaN or Inf are refused unless ``allow_nonfinite=True``. Original CBraMod files give the
    ``cbramod`` configuration, whose ``forward`` on (B, C, N, 200) returns what the
    original's forward returns.
    """
    config, state, extra = read_model_file(path, map_location, allow_nonfinite)
    extra = dict(extra)
    family = extra.pop("family", None)
    config = {**config, **overrides}
    _check_architecture(path, family, config, state)
    model = build_model(family, config)
    model.load_state_dict(state)
    model.contract = extra.pop("contract", None) or {}
    model.extra = extra
    model.source = str(path)
    model.allow_interpolation = bool(allow_interpolation)
    return model

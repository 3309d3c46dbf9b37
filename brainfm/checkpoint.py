"""Loading models from files without executing pickled code.

Recognised formats, every one read without unpickling code:

- checkpoint folders (``model.safetensors`` + ``config.json`` + ``README.md``, brainfm.hub),
  read with safetensors after checking the weights' sha256;
- brainfm model files (``model.pt``: ``{"format": "brainfm-model/1", "family": ...,
  "config": ..., "state_dict": ...}``; no family means the default family), the deprecated
  format before folders, read for old runs only;
- Lightning ``.ckpt`` files written by brainfm-pretrain (the backbone's weights; the data
  contract from the run folder they lie in);
- state dicts saved by other projects' code that a registered family imports (its record's
  ``import_formats``: the original CBraMod and EEGDM).

Every ``.pt``/``.pth``/``.ckpt`` file is read with ``torch.load(weights_only=True)``:
tensors and plain containers only.
"""
from __future__ import annotations

import io
import warnings
import zipfile
from pathlib import Path

import torch
from torch import nn

from .data.contract import build_contract
from .data.store import atomic_write_bytes
from .errors import CheckpointError
from .formats import MODEL_FORMAT
from .hub.config import extra_from_config
from .hub.folder import WEIGHT_KINDS, checkpoint_folder_of, read_folder, read_folder_ema
from .hub.lightning import read_lightning_checkpoint
from .models.registry import (DEFAULT_FAMILY, FAMILIES, build_model, family_and_config_of,
                              get_family, import_format_of)


def save_model(model: nn.Module, path, extra: dict | None = None) -> Path:
    """Write the older single-file format (``model.pt``: architecture config, weights,
    ``extra``), deprecated: brainfm's commands write checkpoint folders
    (:func:`brainfm.save_pretrained`) and only read model files, for runs made before."""
    warnings.warn("model.pt files are deprecated; write a checkpoint folder with "
                  "brainfm.save_pretrained(model, folder)", DeprecationWarning, stacklevel=2)
    path = Path(path)
    family, config = family_and_config_of(model)
    payload = {"format": MODEL_FORMAT, "family": family, "config": config,
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
    folder = checkpoint_folder_of(path)
    if folder is not None:
        family, config, state, cfg = read_folder(folder, map_location)
        return config, state, {"family": family, **extra_from_config(cfg),
                               "contract": cfg.get("contract") or {}}
    config, state, extra = _read_file(path, map_location)
    family = get_family(extra.get("family") or DEFAULT_FAMILY)
    extra.setdefault("contract", build_contract(family.channel_encoding(config), config, extra))
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
        _warn_model_file(path)
        return dict(obj["config"]), obj["state_dict"], {
            "family": obj.get("family") or DEFAULT_FAMILY, **dict(obj.get("extra", {}))}
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    family, fmt = import_format_of(state) if isinstance(state, dict) else (None, None)
    if fmt is not None:
        return fmt.config(state), fmt.convert(state), {
            "source_format": fmt.name, "family": family.name, **fmt.extra}
    if isinstance(obj, dict) and "pytorch-lightning_version" in obj:
        return read_lightning_checkpoint(path, obj)
    formats = ", ".join(f.name for family in FAMILIES.values() for f in family.import_formats)
    raise CheckpointError(f"{path}: neither a brainfm checkpoint nor a state dict of a format "
                          f"a registered family imports ({formats}) -> save models with "
                          "brainfm.save_pretrained")


_WARNED_MODEL_FILES: set[str] = set()


def _warn_model_file(path: Path) -> None:
    """Once per file: model.pt is read for old runs, but the format is deprecated."""
    if str(path) in _WARNED_MODEL_FILES:
        return
    _WARNED_MODEL_FILES.add(str(path))
    warnings.warn(f"{path}: a model.pt file, a deprecated format (read for runs made "
                  "before checkpoint folders) -> convert it once with brainfm-export "
                  f"{path} <folder> and use the folder", DeprecationWarning, stacklevel=4)


def _check_model_file_fields(path: Path, obj: dict) -> None:
    wrong = [f"{key} is {type(obj.get(key)).__name__}, not {kind}"
             for key, kind in (("config", "dict"), ("state_dict", "dict"), ("extra", "dict"))
             if not isinstance(obj.get(key, {}), dict)]
    if not isinstance(obj.get("family", ""), str):
        wrong.append(f"family is {type(obj['family']).__name__}, not str")
    if wrong:
        raise CheckpointError(f"{path}: malformed model file ({'; '.join(wrong)}) -> use the "
                              "original file, or save the model again with save_model")


def read_ema_state(path, map_location="cpu") -> dict | None:
    """The EMA weights a checkpoint holds beside its weights (a folder's ema.safetensors, a
    brainfm Lightning checkpoint's ``ema.`` tensors), or None when it holds none."""
    path = Path(path)
    folder = checkpoint_folder_of(path)
    if folder is not None:
        return read_folder_ema(folder, map_location)
    if not path.is_file() or path.suffix == ".safetensors":
        return None
    check_archive(path)
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise CheckpointError(f"{path}: not a tensor-only checkpoint ({type(err).__name__}: "
                              f"{err}); brainfm never unpickles code") from err
    if not (isinstance(obj, dict) and "pytorch-lightning_version" in obj):
        return None
    ema = {k[len("ema."):]: v for k, v in obj.get("state_dict", {}).items()
           if k.startswith("ema.")}
    return ema or None


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
                    allow_interpolation: bool = False, weights: str = "model",
                    **overrides) -> nn.Module:
    """A model (of the family the file names) from a checkpoint folder, a brainfm Lightning
    ``.ckpt``, an original CBraMod or EEGDM state dict, or an old model file (``model.pt``,
    deprecated). ``weights="ema"``: the EMA weights the checkpoint keeps beside its weights
    (an error naming the file when it keeps none). The model carries its data contract (``model.contract``, used by ``prepare`` and
    ``embed``) and what the file says of its training (``model.extra``);
    ``allow_interpolation`` is the default of ``prepare``/``embed`` for channels a
    fixed-montage checkpoint needs and a recording lacks.

    ``overrides`` change constructor arguments (e.g. ``dropout=0.0``); the weights must
    still fit, and are checked against the config before anything is allocated. Weights with
    NaN or Inf are refused unless ``allow_nonfinite=True``. Original CBraMod files give the
    ``cbramod`` configuration, whose ``forward`` on (B, C, N, 200) returns what the
    original's forward returns.
    """
    if weights not in WEIGHT_KINDS:
        raise ValueError(f"weights={weights!r}; use one of {', '.join(WEIGHT_KINDS)}")
    config, state, extra = read_model_file(path, map_location, allow_nonfinite)
    if weights == "ema":
        state = read_ema_state(path, map_location)
        if state is None:
            raise CheckpointError(f"{path}: holds no EMA weights (a checkpoint folder keeps "
                                  "them in ema.safetensors when its run kept an EMA) -> load "
                                  "weights='model', or export the run's last.ckpt again "
                                  "(brainfm-export RUN FOLDER)")
        _check_finite(path, state, allow_nonfinite)
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

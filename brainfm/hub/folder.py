"""Checkpoint folders in the layout the Hugging Face hub uses: ``model.safetensors``,
``config.json`` and a model card ``README.md``.

A folder is self-contained: ``config.json`` says which model family and architecture the
weights build, the data contract the model was trained on (what :meth:`prepare` applies to
a new recording), the pretraining corpus, objective, steps and held-out figures, and the
sha256 of ``model.safetensors``. Weights are read with safetensors (no pickle, no code), and
the hash is checked before anything is built: a tampered or truncated file is refused, named.
config.json is sealed too (``integrity``: the sha256 of its family, architecture, contract,
weights, read-out and training entries), so a hand edit that keeps the shapes (more heads,
another sampling rate) is refused, naming the part edited; ``weights.file`` must name a file in the folder itself.
brainfm uses no network: the folder can be uploaded as is, and downloaded ones load as is.
"""
from __future__ import annotations

import hashlib
import json
import struct
import warnings
from pathlib import Path

from safetensors.torch import load, save

from ..data.store import atomic_write_bytes
from ..errors import CheckpointError
from ..formats import (CARD, CHECKPOINT_FORMAT, CONFIG, EMA_WEIGHTS, WEIGHTS,
                       checkpoint_folder_files)
from ..models.registry import family_and_config_of
from ..outputs import output_folder
from .card import model_card
from .config import build_config, edited_sections


def sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_checkpoint_folder(path) -> bool:
    path = Path(path)
    return path.is_dir() and (path / CONFIG).is_file()


def checkpoint_folder_of(path) -> Path | None:
    """The checkpoint folder ``path`` is or lies in (its config.json or model.safetensors
    given), else None."""
    path = Path(path)
    if is_checkpoint_folder(path):
        return path
    if path.name in (CONFIG, WEIGHTS) and (path.parent / CONFIG).is_file():
        return path.parent
    return None


# ---- writing ------------------------------------------------------------------------------
#: What ``weights=`` of :func:`save_pretrained` and ``from_pretrained`` may name.
WEIGHT_KINDS = ("model", "ema")


def _state_of(weights) -> dict:
    """A state dict, contiguous on the CPU, of a module or a state dict."""
    weights = getattr(weights, "_orig_mod", weights)
    state = weights.state_dict() if hasattr(weights, "state_dict") else dict(weights)
    return {k: v.detach().cpu().contiguous() for k, v in state.items()}


def save_pretrained(model, folder, card: bool = True, overwrite: bool = False,
                    weights: str = "model", ema=None, **metadata) -> Path:
    """Write ``model`` as a checkpoint folder (model.safetensors, config.json, README.md).

    ``ema``: the exponential moving average of the weights a run kept (a module of the same
    architecture, or its state dict), written beside them as ema.safetensors and sealed in
    config.json (``weights.ema``); ``from_pretrained(folder, weights="ema")`` loads them.
    ``weights="ema"`` asks for them: an error when ``ema`` is None.

    ``metadata`` is what a pretraining run knows (keys of a model file's ``extra``:
    ``datasets``, ``standardise``, ``standardise_per_dataset``, ``sfreq``, ``recording_ids``,
    ``channels``, ``window_s``, ``sensor_types``, ``hours``, ``training``, ...); missing keys
    fall back to what the model was loaded with (``model.extra``), so a loaded checkpoint
    saves back with its contract. The folder must be new, empty or an earlier checkpoint
    folder (``overwrite``: one holding other files too, which are kept; see
    :mod:`brainfm.outputs`); it is replaced whole, so a kill leaves the old or the new
    checkpoint. Returns the folder.
    """
    if weights not in WEIGHT_KINDS:
        raise ValueError(f"weights={weights!r}; use one of {', '.join(WEIGHT_KINDS)}")
    model = getattr(model, "_orig_mod", model)  # torch.compile's wrapper: save the module
    if weights == "ema" and ema is None:
        raise ValueError(f"save_pretrained(weights='ema') to {folder}: no EMA weights given "
                         "-> pass ema=<the run's EMA model or its state dict> "
                         "(brainfm.checkpoint.read_ema_state reads a run's or a folder's), "
                         "or save weights='model'")
    folder = Path(folder)
    with output_folder(folder, "brainfm-export", overwrite, legacy=checkpoint_folder_files,
                       marked=False) as tmp:  # its config.json marks it
        extra = {**dict(getattr(model, "extra", None) or {}), **metadata}
        family, arch = family_and_config_of(model)
        state = _state_of(model)
        payload = save(state, metadata={"format": "pt", "brainfm_family": family})
        ema_entry = None
        if ema is not None:
            ema_state = _state_of(ema)
            if {k: tuple(v.shape) for k, v in ema_state.items()} != \
                    {k: tuple(v.shape) for k, v in state.items()}:
                raise ValueError(f"save_pretrained to {folder}: the EMA weights do not have "
                                 "the model's tensors -> pass the EMA copy of this very model")
            ema_payload = save(ema_state, metadata={"format": "pt", "brainfm_family": family})
            ema_entry = {"file": EMA_WEIGHTS, "sha256": hashlib.sha256(ema_payload).hexdigest()}
            atomic_write_bytes(tmp / EMA_WEIGHTS, ema_payload)
        config = build_config(family, arch, extra, sha256=hashlib.sha256(payload).hexdigest(),
                              n_parameters=sum(v.numel() for v in state.values()),
                              ema=ema_entry)
        atomic_write_bytes(tmp / WEIGHTS, payload)
        atomic_write_bytes(tmp / CONFIG, (json.dumps(config, indent=1, default=str)
                                          + "\n").encode())
        if card:
            atomic_write_bytes(tmp / CARD, model_card(config).encode())
    return folder


# ---- reading ------------------------------------------------------------------------------
def read_config(folder) -> dict:
    """config.json of a checkpoint folder, its fields checked (each malformed one named)
    and its seal verified: an architecture, contract or weights entry edited by hand since
    the folder was written is refused."""
    folder = Path(folder)
    path = folder / CONFIG
    if not path.is_file():
        raise CheckpointError(f"{folder}: no {CONFIG}; a brainfm checkpoint folder holds "
                              f"{WEIGHTS}, {CONFIG} and {CARD}")
    try:
        config = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path}: not valid JSON ({err}); the file is damaged or "
                              "truncated -> copy or download the checkpoint again") from err
    found = config.get("format") if isinstance(config, dict) else None
    if found != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: format {found!r}, this brainfm reads "
                              f"{CHECKPOINT_FORMAT!r} -> re-export it with this brainfm's "
                              "brainfm-export")
    _check_fields(path, config)
    edited = edited_sections(config)
    if edited:
        raise CheckpointError(f"{path}: {', '.join(edited)} changed since the folder was "
                              "written (their sha256 in integrity no longer matches): a "
                              "hand edit makes the weights compute something else -> use the "
                              "original config.json, or load the model, change it in code "
                              "and save_pretrained it to a new folder")
    if edited is None:
        warnings.warn(f"{path}: no integrity seal (written by an older brainfm): the "
                      "architecture and data contract are unverified -> save it again with "
                      "this brainfm (brainfm-export FOLDER NEW_FOLDER)", RuntimeWarning,
                      stacklevel=3)
    return config


#: Fields of config.json a model is built from, and the type each must have.
_FIELDS = {"family": str, "architecture": dict, "contract": dict, "weights": dict}
_WEIGHT_FIELDS = {"file": str, "sha256": str, "n_parameters": int}
_EMA_FIELDS = {"file": str, "sha256": str}
#: Fields of the data contract that prepare/embed read, and their types (None allowed).
_CONTRACT_FIELDS = {"sfreq": (int, float), "window_s": (int, float), "patch_len": int,
                    "standardise": dict, "standardise_per_dataset": dict,
                    "channels": list, "sensor_types": list, "channel_encoding": str}


def _wrong_types(table: dict, fields: dict, prefix: str, optional: bool) -> list[str]:
    """'<prefix><key> is <type>, not <type>' for each field of ``table`` of another type."""
    wrong = []
    for key, kind in fields.items():
        value = table.get(key)
        if value is None and optional:
            continue
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds) or isinstance(value, bool):
            wrong.append(f"{prefix}{key} is {type(value).__name__}, not "
                         f"{' or '.join(k.__name__ for k in kinds)}")
    return wrong


def _check_fields(path: Path, config: dict) -> None:
    wrong = _wrong_types(config, _FIELDS, "", optional=False)
    weights = config.get("weights") if isinstance(config.get("weights"), dict) else None
    contract = config.get("contract") if isinstance(config.get("contract"), dict) else None
    if weights is not None:
        wrong += _wrong_types(weights, _WEIGHT_FIELDS, "weights.", optional=False)
        ema = weights.get("ema")
        if ema is not None and not isinstance(ema, dict):
            wrong.append(f"weights.ema is {type(ema).__name__}, not dict")
        elif ema is not None:
            wrong += _wrong_types(ema, _EMA_FIELDS, "weights.ema.", optional=False)
    if contract is not None:
        wrong += _wrong_types(contract, _CONTRACT_FIELDS, "contract.", optional=True)
    for key, entry in (("weights", weights), ("weights.ema", (weights or {}).get("ema"))):
        file = entry.get("file") if isinstance(entry, dict) else None
        if isinstance(file, str) and (Path(file).name != file or file in ("", ".", "..")):
            wrong.append(f"{key}.file={file!r} is not a file name inside the folder")
    if wrong:
        raise CheckpointError(f"{path}: malformed ({'; '.join(wrong)}) -> use the original "
                              "config.json, or re-export the checkpoint")


def _header_problem(header) -> str | None:
    """What is wrong with a safetensors header (a dict of tensor entries), else None."""
    if not isinstance(header, dict):
        return f"the header is a {type(header).__name__}, not a table of tensors"
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not (isinstance(entry, dict) and isinstance(entry.get("dtype"), str)
                and isinstance(entry.get("shape"), list)
                and all(isinstance(n, int) and n >= 0 for n in entry["shape"])
                and isinstance(entry.get("data_offsets"), list)
                and len(entry["data_offsets"]) == 2
                and all(isinstance(n, int) and n >= 0 for n in entry["data_offsets"])):
            return (f"tensor entry {name!r} is {json.dumps(entry)[:80]}, not "
                    "{dtype, shape, data_offsets}")
    return None


def _check_complete(path: Path, data: bytes) -> None:
    """A safetensors file starts with its header's length and the header gives every
    tensor's byte range: a file shorter than that is truncated (say so, not 'hash')."""
    size = len(data)
    if size < 8:
        raise CheckpointError(f"{path}: the file is truncated ({size} bytes) -> copy or "
                              "download the checkpoint again")
    (n,) = struct.unpack("<Q", data[:8])
    if n > size:
        raise CheckpointError(f"{path}: the file is truncated or not a safetensors file "
                              f"(header of {n} bytes in a {size}-byte file) -> copy or "
                              "download the checkpoint again")
    try:
        header = json.loads(data[8:8 + n])
    except ValueError as err:
        raise CheckpointError(f"{path}: its header is damaged ({err}) -> copy or "
                              "download the checkpoint again") from err
    problem = _header_problem(header)
    if problem:
        raise CheckpointError(f"{path}: not a safetensors file brainfm wrote ({problem}) -> "
                              "copy or download the checkpoint again")
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"),
              default=0)
    if size < 8 + n + end:
        raise CheckpointError(f"{path}: the file is truncated ({size} of {8 + n + end} "
                              "bytes) -> copy or download the checkpoint again")


def _weights_path(folder: Path, config: dict, entry: dict) -> Path:
    """The weights file a config.json entry names, which must lie in the folder itself."""
    weights = folder / entry["file"]
    if weights.resolve().parent != folder.resolve():
        raise CheckpointError(f"{folder / CONFIG}: weights file {entry['file']!r} "
                              f"resolves to {weights.resolve()}, outside the folder -> a "
                              "checkpoint folder loads only its own weights")
    if not weights.is_file():
        raise CheckpointError(f"{weights}: missing; the checkpoint folder {folder} is "
                              "incomplete -> copy or download it again")
    return weights


def _read_weights(folder: Path, config: dict, entry: dict, map_location) -> dict:
    """The state dict of one weights file of the folder, after checking that it is whole
    and is the file ``entry`` (config.json's) describes.

    The file is read once: the bytes that are hashed are the bytes that are loaded (a file
    replaced between the check and the load cannot slip in)."""
    weights = _weights_path(folder, config, entry)
    expected = entry["sha256"]
    data = weights.read_bytes()
    _check_complete(weights, data)
    found = hashlib.sha256(data).hexdigest()
    if found != expected:
        raise CheckpointError(f"{weights}: sha256 {found[:16]}... does not match "
                              f"{expected[:16]}... in {CONFIG}: the weights were changed "
                              "after saving (tampered or damaged) -> use the original folder")
    try:
        state = load(data)
    except Exception as err:
        raise CheckpointError(f"{weights}: not a readable safetensors file "
                              f"({type(err).__name__}: {err})") from err
    del data
    held = sum(v.numel() for v in state.values())
    if held != config["weights"]["n_parameters"]:
        raise CheckpointError(f"{weights}: holds {held} parameters, {CONFIG} says "
                              f"{config['weights']['n_parameters']} -> use the original folder")
    if str(map_location) != "cpu":
        state = {k: v.to(map_location) for k, v in state.items()}
    return state


def read_folder(folder, map_location="cpu") -> tuple[str, dict, dict, dict]:
    """(family, architecture config, state dict, config.json) of a checkpoint folder, after
    checking config.json (:func:`read_config`) and that model.safetensors is whole and is
    the file config.json describes."""
    folder = Path(folder)
    config = read_config(folder)
    state = _read_weights(folder, config, config["weights"], map_location)
    return config["family"], dict(config["architecture"]), state, config


def read_folder_ema(folder, map_location="cpu") -> dict | None:
    """The EMA weights of a checkpoint folder (ema.safetensors, checked as the weights are),
    or None when the run that wrote it kept none."""
    folder = Path(folder)
    config = read_config(folder)
    entry = config["weights"].get("ema")
    if entry is None:
        return None
    return _read_weights(folder, config, entry, map_location)


__all__ = ["CHECKPOINT_FORMAT", "CARD", "CONFIG", "EMA_WEIGHTS", "WEIGHTS", "WEIGHT_KINDS",
           "checkpoint_folder_files", "checkpoint_folder_of", "is_checkpoint_folder",
           "read_config", "read_folder", "read_folder_ema", "save_pretrained", "sha256_of"]

"""Checkpoint folders in the layout the Hugging Face hub uses: ``model.safetensors``,
``config.json`` and a model card ``README.md``.

A folder is self-contained: ``config.json`` says which model family and architecture the
weights build, the data contract the model was trained on (what :meth:`prepare` applies to
a new recording), the pretraining corpus, objective, steps and held-out figures, and the
sha256 of ``model.safetensors``. Weights are read with safetensors (no pickle, no code), and
the hash is checked before anything is built: a tampered or truncated file is refused, named.
brainfm uses no network: the folder can be uploaded as is, and downloaded ones load as is.
"""
from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

from .._version import __version__
from ..checkpoint import CheckpointError, family_and_config_of
from ..data.store import atomic_write_bytes

CHECKPOINT_FORMAT = "brainfm-checkpoint/1"
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
CARD = "README.md"


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
def save_pretrained(model, folder, card: bool = True, **metadata) -> Path:
    """Write ``model`` as a checkpoint folder (model.safetensors, config.json, README.md).

    ``metadata`` is what a pretraining run knows (keys of a model file's ``extra``:
    ``datasets``, ``standardise``, ``standardise_per_dataset``, ``sfreq``, ``recording_ids``,
    ``channels``, ``window_s``, ``sensor_types``, ``hours``, ``training``, ...); missing keys
    fall back to what the model was loaded with (``model.extra``), so a loaded checkpoint
    saves back with its contract. Returns the folder.
    """
    from safetensors.torch import save

    from .config import build_config

    model = getattr(model, "_orig_mod", model)  # torch.compile's wrapper: save the module
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise CheckpointError(f"{folder}: exists and is a file -> choose a folder name")
    foreign = [p.name for p in folder.iterdir()] if folder.is_dir() else []
    foreign = [n for n in foreign if n not in (WEIGHTS, CONFIG, CARD) and not n.startswith(".")]
    if foreign:
        raise CheckpointError(f"{folder}: holds other files ({', '.join(sorted(foreign)[:5])}); "
                              "a checkpoint folder holds only model.safetensors, config.json "
                              "and README.md -> choose a new or empty folder")
    folder.mkdir(parents=True, exist_ok=True)
    extra = {**dict(getattr(model, "extra", None) or {}), **metadata}
    family, arch = family_and_config_of(model)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    payload = save(state, metadata={"format": "pt", "brainfm_family": family})
    config = build_config(family, arch, extra, sha256=hashlib.sha256(payload).hexdigest(),
                          n_parameters=sum(v.numel() for v in state.values()))
    atomic_write_bytes(folder / WEIGHTS, payload)
    atomic_write_bytes(folder / CONFIG, (json.dumps(config, indent=1, default=str)
                                          + "\n").encode())
    if card:
        from .card import model_card

        atomic_write_bytes(folder / CARD, model_card(config).encode())
    return folder


# ---- reading ------------------------------------------------------------------------------
def read_config(folder) -> dict:
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
    return config


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
    end = max((int(v["data_offsets"][1]) for k, v in header.items()
               if k != "__metadata__"), default=0)
    if size < 8 + n + end:
        raise CheckpointError(f"{path}: the file is truncated ({size} of {8 + n + end} "
                              "bytes) -> copy or download the checkpoint again")


def read_folder(folder, map_location="cpu") -> tuple[str, dict, dict, dict]:
    """(family, architecture config, state dict, config.json) of a checkpoint folder, after
    checking that model.safetensors is whole and is the file config.json describes.

    The file is read once: the bytes that are hashed are the bytes that are loaded (a file
    replaced between the check and the load cannot slip in)."""
    from safetensors.torch import load

    folder = Path(folder)
    config = read_config(folder)
    weights = folder / config.get("weights", {}).get("file", WEIGHTS)
    if not weights.is_file():
        raise CheckpointError(f"{weights}: missing; the checkpoint folder {folder} is "
                              "incomplete -> copy or download it again")
    expected = config.get("weights", {}).get("sha256")
    if not expected:
        raise CheckpointError(f"{folder / CONFIG}: no weights.sha256; brainfm loads only "
                              "weights it can verify -> re-export the checkpoint")
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
    if str(map_location) != "cpu":
        state = {k: v.to(map_location) for k, v in state.items()}
    return config["family"], dict(config["architecture"]), state, config


__all__ = ["CHECKPOINT_FORMAT", "CARD", "CONFIG", "WEIGHTS", "checkpoint_folder_of",
           "is_checkpoint_folder", "read_config", "read_folder", "save_pretrained", "sha256_of"]

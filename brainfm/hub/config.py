"""config.json of a checkpoint folder: built from what a run knows, read back into the
``extra`` dict the rest of brainfm uses (bench leakage checks, the pretraining gate).

Its data contract (what a user needs to bring a new recording to the model) is built by
:mod:`brainfm.data.contract`, with the channel encoding the model's family record gives.
"""
from __future__ import annotations

import hashlib
import json

from .._version import __version__
from ..data.contract import build_contract
from ..formats import CHECKPOINT_FORMAT, WEIGHTS
from ..models.registry import get_family


def recording_ids_hash(ids) -> str | None:
    if not ids:
        return None
    return hashlib.sha256("\n".join(sorted(map(str, ids))).encode()).hexdigest()


def build_config(family: str, arch: dict, extra: dict, sha256: str,
                 n_parameters: int, ema: dict | None = None) -> dict:
    """The whole config.json from a model's family and architecture and a run's ``extra``
    (``ema``: the file and sha256 of the EMA weights, when the folder holds them)."""
    ids = list(extra.get("recording_ids") or [])
    training = dict(extra.get("training") or {})
    config = {
        "format": CHECKPOINT_FORMAT,
        "library_name": "brainfm",
        "brainfm_version": __version__,
        "family": family,
        "architecture": {k: (list(v) if isinstance(v, tuple) else v) for k, v in arch.items()},
        "contract": build_contract(get_family(family).channel_encoding(arch), arch, extra),
        "corpus": {"datasets": list(extra.get("datasets") or []),
                   "hours": extra.get("hours"),
                   "n_recordings": len(ids) or None,
                   "recording_ids_sha256": recording_ids_hash(ids),
                   "recording_ids": sorted(map(str, ids))},
        "objective": training.get("objective"),
        "pretext": training.get("pretext"),
        "readout": training.get("readout"),
        "steps": training.get("steps"),
        "heldout": training.get("heldout"),
        "training": training,
        "weights": {"file": WEIGHTS, "sha256": sha256,
                    "n_parameters": int(n_parameters)},
    }
    if ema is not None:
        config["weights"]["ema"] = dict(ema)
    if extra.get("source_format"):
        config["source_format"] = extra["source_format"]
    return seal(config)


#: The parts of config.json a model is built, fed and read out by, and judged on (the
#: benchmark's pretraining gate reads training.heldout): a hand edit of any of them changes
#: what the weights compute or how they are judged, so each is hashed when it is written.
SEALED = ("family", "architecture", "contract", "weights", "readout", "training")


def section_hashes(config: dict) -> dict[str, str]:
    """sha256 of each sealed part of ``config`` (as JSON, keys sorted)."""
    return {key: hashlib.sha256(json.dumps(config.get(key), sort_keys=True, default=str)
                                .encode()).hexdigest() for key in SEALED}


def seal(config: dict) -> dict:
    """``config`` as it reads back from JSON, with ``integrity``: the hash of each sealed
    part (the weights' sha256 is in ``weights``, so the seal covers the weights too)."""
    config = json.loads(json.dumps(config, default=str))
    config["integrity"] = {"sha256": section_hashes(config),
                           "covers": ", ".join(SEALED) + " (weights with their sha256); a "
                                     "hand edit of any of them is refused"}
    return config


def edited_sections(config: dict) -> list[str] | None:
    """The sealed parts of ``config`` changed since it was written; None when it carries no
    seal (written before brainfm sealed folders)."""
    seal_ = config.get("integrity")
    if seal_ is None:
        return None
    recorded = seal_.get("sha256") if isinstance(seal_, dict) else None
    if not isinstance(recorded, dict):
        return ["integrity"]
    found = section_hashes(config)
    return [key for key in SEALED if recorded.get(key) != found[key]]


def extra_from_config(config: dict) -> dict:
    """The ``extra`` dict of the model-file era, from config.json (what bench code reads)."""
    contract = config.get("contract") or {}
    corpus = config.get("corpus") or {}
    extra = {"datasets": list(corpus.get("datasets") or []),
             "recording_ids": list(corpus.get("recording_ids") or []),
             "hours": corpus.get("hours"),
             "training": dict(config.get("training") or {}),
             "sfreq": contract.get("sfreq"),
             "window_s": contract.get("window_s"),
             "channels": contract.get("channels"),
             "n_montages": contract.get("n_montages"),
             "sensor_types": contract.get("sensor_types")}
    if contract.get("standardise"):
        extra["standardise"] = contract["standardise"]
        extra["standardise_per_dataset"] = contract.get("standardise_per_dataset") or {}
    if config.get("source_format"):
        extra["source_format"] = config["source_format"]
    return extra


__all__ = ["SEALED", "build_config", "edited_sections", "extra_from_config",
           "recording_ids_hash", "seal", "section_hashes"]

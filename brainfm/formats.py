"""The names and format tags brainfm writes on disk, in one place at the bottom of the
package: every layer may read them, none of them imports anything of brainfm's.

A checkpoint is a folder (``config.json`` + ``model.safetensors`` + ``README.md``, and
``ema.safetensors`` when the run kept an exponential moving average of its weights).
``model.pt`` files (:data:`MODEL_FORMAT`) are the older single-file format: still read, no
longer written.
"""
from __future__ import annotations

import json
from pathlib import Path

#: config.json's ``format`` of a checkpoint folder.
CHECKPOINT_FORMAT = "brainfm-checkpoint/1"
WEIGHTS = "model.safetensors"
#: The EMA weights of a run that kept them (same tensors as WEIGHTS).
EMA_WEIGHTS = "ema.safetensors"
CONFIG = "config.json"
CARD = "README.md"
#: The ``format`` of the older single-file model (``model.pt``), read for old runs only.
MODEL_FORMAT = "brainfm-model/1"
#: Where a pretraining run keeps its checkpoint folder (``<run>/checkpoint``).
RUN_CHECKPOINT = "checkpoint"
#: The marker file every brainfm output folder carries (brainfm.outputs).
MARKER = ".brainfm-output.json"


def checkpoint_folder_files(folder) -> set[str] | None:
    """The files of the checkpoint folder brainfm wrote at ``folder`` (recognised by its
    config.json's format; such a folder carries no other marker), else None."""
    config = Path(folder) / CONFIG
    try:
        found = json.loads(config.read_text()).get("format")
    except (OSError, ValueError, AttributeError):
        return None
    if found != CHECKPOINT_FORMAT:
        return None
    return {name for name in (WEIGHTS, EMA_WEIGHTS, CONFIG, CARD)
            if (Path(folder) / name).is_file()}


__all__ = ["CARD", "CHECKPOINT_FORMAT", "CONFIG", "EMA_WEIGHTS", "MARKER", "MODEL_FORMAT",
           "RUN_CHECKPOINT", "WEIGHTS", "checkpoint_folder_files"]

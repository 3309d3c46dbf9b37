"""The backbone of a brainfm-pretrain Lightning checkpoint (``<run>/checkpoints/last.ckpt``).

The file itself (read with ``weights_only=True`` by the caller) holds the task's
hyperparameters (the backbone's constructor arguments under ``model``) and every weight of
the task; the backbone's are those under ``model.``. What the model was trained on lives in
the run folder: its checkpoint folder's config.json (or, for runs made before folders, its
model.pt's ``extra``), else the contract rebuilt from the run's corpus stores
(``datamodule_hyper_parameters``).
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch

from ..data.contract import corpus_contract
from ..data.store import CorpusStore
from ..errors import CheckpointError
from ..formats import MODEL_FORMAT, RUN_CHECKPOINT, checkpoint_folder_files
from ..models.registry import family_of_task
from .config import extra_from_config
from .folder import read_config


def run_folder_of(path: Path) -> Path:
    """``<run>`` for ``<run>/checkpoints/last.ckpt`` (the folder itself otherwise)."""
    path = Path(path)
    return path.parent.parent if path.parent.name == "checkpoints" else path.parent


def is_brainfm_lightning(obj) -> bool:
    hp = obj.get("hyper_parameters") if isinstance(obj, dict) else None
    return isinstance(hp, dict) and isinstance(hp.get("model"), dict) and any(
        str(k).startswith("model.") for k in obj.get("state_dict", {}))


def read_lightning_checkpoint(path: Path, obj: dict) -> tuple[dict, dict, dict]:
    if not is_brainfm_lightning(obj):
        raise CheckpointError(f"{path}: a Lightning checkpoint, but not one brainfm-pretrain "
                              "wrote (no backbone config under hyper_parameters.model) -> "
                              "export the backbone's state_dict from the code that trained it")
    hp = obj["hyper_parameters"]
    family = family_of_task(hp)
    task = family.task_class(family.default_task)
    config = task.backbone_config(hp["model"])  # what the task built
    state = {k[len("model."):]: v for k, v in obj["state_dict"].items()
             if k.startswith("model.")}
    step = int(obj.get("global_step", 0))
    extra = {"family": family.name, **run_metadata(path, obj, step, family.default_task)}
    return config, state, extra


def _model_file_extra(model_file: Path) -> dict | None:
    """The ``extra`` of a brainfm model file (checkpoint.save_model), else None.

    torch.save's archive holds the pickled dict (small) and one record per tensor; with
    ``mmap=True`` the tensors stay unread views of the file, so only the dict is read, still
    by the weights-only unpickler (no code runs). The weights are not what is wanted here:
    they come from the Lightning checkpoint."""
    if not model_file.is_file():
        return None
    try:
        payload = torch.load(model_file, map_location="cpu", weights_only=True, mmap=True)
    except Exception:
        return None
    if not (isinstance(payload, dict) and payload.get("format") == MODEL_FORMAT):
        return None
    return dict(payload.get("extra") or {})


def _folder_extra(folder: Path) -> dict | None:
    """The ``extra`` of the run's checkpoint folder (its config.json), else None."""
    if checkpoint_folder_files(folder) is None:
        return None
    try:
        return extra_from_config(read_config(folder))
    except CheckpointError:
        return None


def run_metadata(path: Path, obj: dict, step: int, objective: str) -> dict:
    """What the run folder says about the training behind this checkpoint at ``step``
    (trained by the pretraining task ``objective``): the data contract from the run's
    checkpoint folder, else its model.pt (runs made before folders), else its stores."""
    run = run_folder_of(path)
    training = {"objective": objective, "steps": step}
    summary = run / "training_summary.json"
    if summary.is_file():
        try:
            done = json.loads(summary.read_text())
        except ValueError:
            done = {}
        if int(done.get("steps", -1)) == step:  # figures of this very state only
            training = {**done, "objective": done.get("objective", objective)}
    extra = _folder_extra(run / RUN_CHECKPOINT)
    if extra is None:
        extra = _model_file_extra(run / "model.pt")
    if extra is not None:
        return {**extra, "training": training}
    stores = (obj.get("datamodule_hyper_parameters") or {}).get("stores") or []
    found = [Path(s) for s in stores if (Path(s) / "store.json").is_file()]
    if stores and len(found) == len(stores):
        return {**corpus_contract([CorpusStore(s) for s in found]),
                "training": training}
    warnings.warn(f"{path}: neither the run's checkpoint folder (or model.pt) nor its corpus "
                  "stores "
                  f"({', '.join(map(str, stores)) or 'none named'}) are at hand: the "
                  "checkpoint gets brainfm's default data contract, unverified -> run "
                  "brainfm-export from the folder the run was started in", RuntimeWarning,
                  stacklevel=3)
    return {"training": training}


__all__ = ["is_brainfm_lightning", "read_lightning_checkpoint", "run_folder_of"]

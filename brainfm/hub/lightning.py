"""The backbone of a brainfm-pretrain Lightning checkpoint (``<run>/checkpoints/last.ckpt``).

The file itself (read with ``weights_only=True`` by the caller) holds the task's
hyperparameters (the backbone's constructor arguments under ``model``) and every weight of
the task; the backbone's are those under ``model.``. What the model was trained on lives in
the run folder: the model file's ``extra`` when the run exported one at the same step, else
the contract rebuilt from the run's corpus stores (``datamodule_hyper_parameters``).
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

from ..checkpoint import CheckpointError

#: Hyperparameters only the diffusion task has (not ema_decay: the masked-patch task's
#: latent target keeps an EMA teacher too).
_DIFFUSION_KEYS = ("prediction_type",)


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
    diffusion = any(k in hp for k in _DIFFUSION_KEYS)
    family = "diffusion" if diffusion else "criss_cross"
    config = {k: v for k, v in dict(hp["model"]).items() if k != "family"}
    if not diffusion:
        config["head"] = "reconstruction"  # what MaskedPatchPretraining builds
    state = {k[len("model."):]: v for k, v in obj["state_dict"].items()
             if k.startswith("model.")}
    step = int(obj.get("global_step", 0))
    extra = {"family": family, **run_metadata(path, obj, step, diffusion)}
    return config, state, extra


def _model_file_extra(model_file: Path) -> dict | None:
    """The ``extra`` of a brainfm model file (checkpoint.save_model), else None.

    torch.save's archive holds the pickled dict (small) and one record per tensor; with
    ``mmap=True`` the tensors stay unread views of the file, so only the dict is read, still
    by the weights-only unpickler (no code runs). The weights are not what is wanted here:
    they come from the Lightning checkpoint."""
    if not model_file.is_file():
        return None
    import torch

    from ..checkpoint import MODEL_FORMAT

    try:
        payload = torch.load(model_file, map_location="cpu", weights_only=True, mmap=True)
    except Exception:
        return None
    if not (isinstance(payload, dict) and payload.get("format") == MODEL_FORMAT):
        return None
    return dict(payload.get("extra") or {})


def run_metadata(path: Path, obj: dict, step: int, diffusion: bool) -> dict:
    """What the run folder says about the training behind this checkpoint at ``step``."""
    run = run_folder_of(path)
    objective = "diffusion" if diffusion else "masked_patch"
    training = {"objective": objective, "steps": step}
    summary = run / "training_summary.json"
    if summary.is_file():
        try:
            done = json.loads(summary.read_text())
        except ValueError:
            done = {}
        if int(done.get("steps", -1)) == step:  # figures of this very state only
            training = {**done, "objective": done.get("objective", objective)}
    extra = _model_file_extra(run / "model.pt")
    if extra is not None:
        return {**extra, "training": training}
    stores = (obj.get("datamodule_hyper_parameters") or {}).get("stores") or []
    found = [Path(s) for s in stores if (Path(s) / "store.json").is_file()]
    if stores and len(found) == len(stores):
        from ..data.store import CorpusStore
        from ..pretrain_run import preprocessing_contract

        return {**preprocessing_contract([CorpusStore(s) for s in found]),
                "training": training}
    warnings.warn(f"{path}: neither the run's model.pt nor its corpus stores "
                  f"({', '.join(map(str, stores)) or 'none named'}) are at hand: the "
                  "checkpoint gets brainfm's default data contract, unverified -> run "
                  "brainfm-export from the folder the run was started in", RuntimeWarning,
                  stacklevel=3)
    return {"training": training}


__all__ = ["is_brainfm_lightning", "read_lightning_checkpoint", "run_folder_of"]

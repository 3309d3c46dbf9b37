"""A pretraining run folder is not overwritten by accident, nor resumed with another model.

A folder holding a run's outputs (its checkpoints, model file, metrics, result) is only
continued (``resume=``) or, when asked (``overwrite=true``), cleared of exactly those outputs
before a new run starts there; anything else in it (the user's notes, Hydra's logs) stays.
"""
from __future__ import annotations

from pathlib import Path

from .errors import BrainfmError
from .formats import MARKER, RUN_CHECKPOINT, checkpoint_folder_files

#: What brainfm-pretrain writes at the top of its run folder (Hydra's .hydra/ and the log
#: are written before the run starts and do not make a folder a run).
RUN_FILES = ("model.pt", "result.json", "training_summary.json", "metrics.csv",
             "hparams.yaml")
CHECKPOINTS = "checkpoints"
CHECKPOINT_FOLDER = RUN_CHECKPOINT


def _checkpoint_files(folder: Path) -> list[Path]:
    """The Lightning checkpoints RunCheckpoint wrote (last.ckpt, step-NNNNNNN.ckpt)."""
    ckpts = folder / CHECKPOINTS
    if not ckpts.is_dir():
        return []
    return sorted(p for p in ckpts.iterdir() if p.is_file() and (
        p.name == "last.ckpt" or (p.name.startswith("step-") and p.suffix == ".ckpt")))


def run_outputs(folder) -> list[str]:
    """The run outputs ``folder`` holds (relative names), empty when it holds none."""
    folder = Path(folder)
    found = [name for name in RUN_FILES if (folder / name).is_file()]
    found += [f"{CHECKPOINTS}/{p.name}" for p in _checkpoint_files(folder)]
    if (folder / CHECKPOINT_FOLDER / "config.json").is_file():
        found.append(f"{CHECKPOINT_FOLDER}/")
    return found


def run_checkpoint(run) -> Path:
    """What to load for a finished pretraining run: its checkpoint folder
    (``<run>/checkpoint``), or, for a run made before folders, its ``model.pt`` (deprecated;
    read, never written). The folder's path when neither exists (loading it names the
    problem)."""
    run = Path(run)
    folder = run / CHECKPOINT_FOLDER
    if (folder / "config.json").is_file() or not (run / "model.pt").is_file():
        return folder
    return run / "model.pt"


def claim_run_folder(folder, resume=None, overwrite: bool = False) -> None:
    """Refuse to start a new run over an earlier one in ``folder`` unless it is resumed
    (``resume``) or ``overwrite`` is set; with ``overwrite`` the earlier run's outputs, and
    only those, are removed first."""
    folder = Path(folder)
    found = run_outputs(folder)
    if not found or resume:
        return
    if not overwrite:
        finished = "finished" if (folder / "result.json").is_file() else "started"
        last = folder / CHECKPOINTS / "last.ckpt"
        shown = ", ".join(found[:6]) + (", ..." if len(found) > 6 else "")
        raise BrainfmError(f"{folder} holds a {finished} pretraining run ({shown}); a new run "
                           "there would replace it -> "
                           + (f"resume={last} to continue it, " if last.is_file() else "")
                           + "overwrite=true to start over in this folder (its outputs are "
                           "deleted), or another run folder (hydra.run.dir=...)")
    _remove_run_outputs(folder)


def _remove_run_outputs(folder: Path) -> None:
    for name in RUN_FILES:
        (folder / name).unlink(missing_ok=True)
    for path in _checkpoint_files(folder):
        path.unlink(missing_ok=True)  # every rank of a multi-process run may be here
    checkpoint = folder / CHECKPOINT_FOLDER
    for name in [*(checkpoint_folder_files(checkpoint) or ()), MARKER]:
        (checkpoint / name).unlink(missing_ok=True)
    for empty in (folder / CHECKPOINTS, checkpoint):
        try:
            empty.rmdir()  # only when empty: the user's files in it stay
        except OSError:
            pass


def check_resume_model(resume, model_cfg: dict) -> None:
    """Resuming must build the model the checkpoint holds: a different architecture is
    refused with both configurations named (not a state-dict RuntimeError)."""
    import torch  # not at the top: brainfm-prep imports this module, torch is slow to load

    try:
        ckpt = torch.load(resume, map_location="cpu", weights_only=True, mmap=True)
        saved = dict(ckpt["hyper_parameters"]["model"])
        saved.pop("family", None)  # recorded since tasks keep it; the architecture is the rest
    except Exception as err:
        raise BrainfmError(f"resume={resume}: cannot read the model configuration it was "
                           f"trained with ({type(err).__name__}: {err}) -> resume from a "
                           "last.ckpt that brainfm-pretrain wrote") from err
    now = {k: v for k, v in dict(model_cfg).items() if k != "family"}
    differ = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))
    if differ:
        changes = "; ".join(f"{k}: checkpoint {saved.get(k)!r}, now {now.get(k)!r}"
                            for k in differ)
        raise BrainfmError(
            f"resume={resume}: the checkpoint was trained with another model configuration "
            f"({changes}); checkpoint model {saved}; this run's model {now} -> resume with "
            "the model the run was started with, or start a new run without resume=")


__all__ = ["RUN_FILES", "check_resume_model", "claim_run_folder", "run_checkpoint",
           "run_outputs"]

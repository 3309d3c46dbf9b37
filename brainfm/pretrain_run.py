"""brainfm-pretrain: corpus stores -> DataModule -> pretraining task -> checkpoint folder
(``<run>/checkpoint/``: model.safetensors, config.json, model card, and ema.safetensors
when the task keeps an EMA of its weights).

Kept out of cli.py so the entry point stays a thin Hydra shell. Stores that are missing are
prepared first (on rank 0 only; other ranks wait for them).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from .checkpoint import check_archive
from .configuration import dataset_prep_configs
from .data.contract import corpus_contract
from .data.datamodule import BrainDataModule
from .data.prep import prepare
from .formats import RUN_CHECKPOINT
from .hub.folder import save_pretrained
from .paths import data_root as resolve_data_root
from .run_folder import check_resume_model, claim_run_folder
from .tasks.base import build_task
from .tasks.checkpointing import RunCheckpoint, checkpoint_step, finish_or_stop, pretrain_logger
from .tasks.run_progress import RunProgress


def rank() -> int:
    """This process's global rank under torchrun/SLURM/Lightning launchers (0 alone)."""
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", 0)))


def ensure_stores(datasets, store_root: Path, data_root, wait_s: float = 1800.0,
                  inline: dict | None = None, view: str | None = None) -> list[Path]:
    """Prepare each named dataset into its store under ``store_root`` unless it is there
    already; returns the store folders.

    A dataset is ``conf/dataset/<name>.yaml``, or, when ``inline`` has an entry for it, that
    entry merged over ``conf/dataset/folder.yaml`` (a dataset defined in an experiment file).
    ``view`` cuts the recordings another way (e.g. ``continuous`` for pretraining: long
    non-overlapping windows instead of the task's trials) into ``<name>.<view>``.
    """
    stores = []
    for name in datasets:
        spec, std = dataset_prep_configs(name, inline)
        if view:
            spec = spec.with_view(view)
        store = Path(store_root) / spec.store_name()
        stores.append(store)
        ready = store / "windows.parquet"
        if ready.exists():
            continue
        if rank() > 0:  # rank 0 prepares; the others wait for its manifest
            deadline = time.time() + wait_s
            while not ready.exists():
                if time.time() > deadline:
                    raise TimeoutError(f"rank {rank()}: store {store} never appeared")
                time.sleep(1.0)
            continue
        summary = prepare(spec, std, resolve_data_root(data_root), store)
        print(summary.as_text())
    return stores


def corpus_report(dm) -> str:
    """What the corpus holds after rejection and splitting, and the planned mix."""
    import pandas as pd

    from .data.groups import subject_groups

    lines = ["brainfm-pretrain corpus (windows after amplitude rejection; held-out groups):"]
    for name, rej in dm.rejection.items():
        split = {k: int((v.table["dataset"] == name).sum()) for k, v in dm.splits.items()}
        val = dm.splits["val"].table
        held = pd.unique(subject_groups(val[val["dataset"] == name]))
        share = dm.mixture.get(name)
        lines.append(
            f"  {name}: {split['train']} train / {split['val']} val windows "
            f"({len(held)} held-out {'recordings' if '/rec/' in ''.join(held) else 'subjects'})"
            ", "
            f"{rej['rejected']} of {rej['windows']} rejected"
            + (f" at max|x| >= {rej['max_abs']:g}" if rej["max_abs"] is not None else "")
            + (f"; {share:.1%} of training batches" if share is not None else ""))
    return "\n".join(lines)


def _supported_precision(trainer_cfg: dict) -> dict:
    """bf16 autocast where the GPU supports it, full precision (with a warning) elsewhere."""
    import warnings

    import torch

    if str(trainer_cfg.get("precision", "")).startswith("bf16") and \
            trainer_cfg.get("accelerator") in ("gpu", "cuda") and \
            torch.cuda.is_available() and not torch.cuda.is_bf16_supported():
        warnings.warn("this GPU has no bf16: training in 32-bit (set trainer.precision)")
        trainer_cfg = {**trainer_cfg, "precision": "32-true"}
    return trainer_cfg


def run_pretrain(cfg) -> dict:
    import lightning as L
    import torch
    from lightning.pytorch.callbacks import LearningRateMonitor
    from omegaconf import OmegaConf

    out_dir = Path(cfg.output_dir)
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    overwrite = bool(cfg.get("overwrite", False))
    if cfg.resume:  # before any work: the checkpoint exists, is whole and holds this model
        checkpoint_step(cfg.resume)  # exists and is readable
        check_archive(Path(cfg.resume))  # and no byte of it changed
        check_resume_model(cfg.resume, {k: v for k, v in model_cfg.items() if k != "family"})
    claim_run_folder(out_dir, cfg.resume, overwrite)
    L.seed_everything(cfg.seed, workers=True)
    data = cfg.data
    stores = ensure_stores(data.datasets, Path(cfg.store_root), cfg.data_root,
                           view=data.get("view"))
    dm = BrainDataModule([str(s) for s in stores], store_root=cfg.store_root,
                         patch_len=model_cfg["patch_len"], batch_size=data.batch_size,
                         num_workers=data.num_workers, val_fraction=data.val_fraction,
                         bucket_channels=data.bucket_channels, seed=cfg.seed,
                         max_abs=data.max_abs, max_abs_relative=data.get("max_abs_relative"),
                         mix=data.get("mix"), mix_cap=data.get("mix_cap"),
                         test_groups=list(data.get("exclude_groups") or []))
    dm.setup()
    if rank() == 0:
        print(corpus_report(dm))
    task = build_task(OmegaConf.to_container(cfg.task, resolve=True), model_cfg,
                      cfg.seed)
    if cfg.compile:
        task.model = torch.compile(task.model)
    trainer_cfg = _supported_precision(OmegaConf.to_container(cfg.trainer, resolve=True))
    logger = pretrain_logger(cfg.logger, out_dir, cfg.resume)
    ckpt = RunCheckpoint(out_dir / "checkpoints", cfg.get("checkpoint_every_n_steps", 200),
                         cfg.get("checkpoint_keep_every_n_steps"),
                         cfg.get("checkpoint_every_minutes", 10))
    callbacks = [ckpt, LearningRateMonitor("step")]
    if not trainer_cfg.get("enable_progress_bar", True):  # no bar: a line now and then
        callbacks.append(RunProgress(cfg.get("progress_every_s", 30)))
    trainer = L.Trainer(default_root_dir=out_dir, logger=logger, enable_checkpointing=False,
                        callbacks=callbacks, **trainer_cfg)
    trainer.fit(task, datamodule=dm, ckpt_path=cfg.resume)
    finish_or_stop(ckpt, trainer)
    result = {"output_dir": str(out_dir), "global_step": int(trainer.global_step),
              **{k: float(v) for k, v in trainer.callback_metrics.items()}}
    training = {"objective": task.kind, "pretext": task.pretext(),
                "readout": {"layer": cfg.get("readout_layer"), "pool": "mean"},
                "representation": getattr(task, "representation", {}),
                "steps": int(trainer.global_step),
                "heldout": task.heldout, "drawn_mix": task.drawn_mix(),
                "planned_mix": dm.mixture, "rejection": dm.rejection,
                "view": data.get("view")}
    result["objective"] = task.kind
    result["heldout"] = task.heldout
    result["representation"] = training["representation"]
    if trainer.is_global_zero:
        (out_dir / "training_summary.json").write_text(json.dumps(training, indent=1))
        if cfg.export:
            model = getattr(task.model, "_orig_mod", task.model)
            extra = {**corpus_contract(dm.full.stores), "training": training}
            ema = task.ema_model()
            save_pretrained(model, out_dir / RUN_CHECKPOINT, overwrite=overwrite,
                            weights="model" if ema is None else "ema", ema=ema, **extra)
            result["checkpoint_dir"] = str(out_dir / RUN_CHECKPOINT)
        (out_dir / "result.json").write_text(json.dumps(result, indent=1))
    return result

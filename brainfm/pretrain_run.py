"""brainfm-pretrain: corpus stores -> DataModule -> pretraining task -> checkpoint folder
(``<run>/checkpoint/``: model.safetensors, config.json, model card) and model file.

Kept out of cli.py so the entry point stays a thin Hydra shell. Stores that are missing are
prepared first (on rank 0 only; other ranks wait for them).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from .paths import data_root as resolve_data_root


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
    from .configuration import dataset_prep_configs
    from .data.prep import prepare

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


def preprocessing_contract(stores) -> dict:
    """What a model trained on these stores expects of its input (for its checkpoint): the
    standardisation, rate, window length, sensor types, the channel set when every recording
    shares one (in order), the corpus hours and recording ids."""
    import json as _json
    from collections import Counter

    from .data.sensors import SENSOR_TYPE_IDS

    metas = [s.meta for s in stores]
    montages, type_ids, lengths, seconds = set(), set(), Counter(), 0.0
    for store in stores:
        ok = store.recordings[store.recordings["status"] == "ok"]
        montages.update(tuple(_json.loads(n)) for n in ok["ch_names"])
        type_ids.update(int(row[6]) for s in ok["sensors"] for row in _json.loads(s))
        n = store.windows["n_samples"]
        lengths.update((n / store.sfreq).round(6).tolist())
        seconds += float(n.sum()) / store.sfreq
    names = {v: k for k, v in SENSOR_TYPE_IDS.items()}
    return {"datasets": [m["dataset"]["name"] for m in metas],
            "standardise": metas[0]["standardise"] if metas else {},
            "standardise_per_dataset": {m["dataset"]["name"]: m["standardise"] for m in metas},
            "sfreq": metas[0]["sfreq"] if metas else None,
            "window_s": lengths.most_common(1)[0][0] if lengths else None,
            "sensor_types": sorted(names[i] for i in type_ids if i in names),
            "channels": list(next(iter(montages))) if len(montages) == 1 else None,
            "n_montages": len(montages),
            "hours": round(seconds / 3600, 4),
            "recording_ids": sorted({i for s in stores for i in s.recording_ids()})}


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


def pretext_of(task_cfg) -> dict:
    """What a masked-patch run was trained to predict, and how its patches were hidden (for
    the checkpoint and its model card); {} for other tasks."""
    if task_cfg.get("kind", "masked_patch") != "masked_patch":
        return {}
    return {"target": task_cfg.get("objective", "reconstruction"),
            "band_power_weight": float(task_cfg.get("band_power_weight", 0.0)),
            "mask_kind": task_cfg.get("mask_kind", "bernoulli"),
            "mask_ratio": float(task_cfg.get("mask_ratio", 0.5))}


def run_pretrain(cfg) -> dict:
    import lightning as L
    import torch
    from lightning.pytorch.callbacks import LearningRateMonitor
    from omegaconf import OmegaConf

    from .checkpoint import check_archive, save_model
    from .hub.folder import save_pretrained
    from .data.datamodule import BrainDataModule
    from .run_folder import check_resume_model, claim_run_folder
    from .tasks.base import build_task
    from .tasks.checkpointing import (RunCheckpoint, checkpoint_step, finish_or_stop,
                                      pretrain_logger)
    from .tasks.run_progress import RunProgress

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
    training = {"objective": cfg.task.get("kind", "masked_patch"),
                "pretext": pretext_of(cfg.task),
                "readout": {"layer": cfg.get("readout_layer"), "pool": "mean"},
                "representation": getattr(task, "representation", {}),
                "steps": int(trainer.global_step),
                "heldout": task.heldout, "drawn_mix": task.drawn_mix(),
                "planned_mix": dm.mixture, "rejection": dm.rejection,
                "view": data.get("view")}
    result["heldout"] = task.heldout
    result["representation"] = training["representation"]
    if trainer.is_global_zero:
        (out_dir / "training_summary.json").write_text(json.dumps(training, indent=1))
        if cfg.export:
            model = getattr(task.model, "_orig_mod", task.model)
            extra = {**preprocessing_contract(dm.full.stores), "training": training}
            # the checkpoint folder is what users load and share; model.pt stays for the
            # benchmark's checkpoint paths (*.pt) and older tools
            save_pretrained(model, out_dir / "checkpoint", overwrite=overwrite, **extra)
            save_model(model, out_dir / "model.pt", extra=extra)
            result["checkpoint_dir"] = str(out_dir / "checkpoint")
            result["model_file"] = str(out_dir / "model.pt")
        (out_dir / "result.json").write_text(json.dumps(result, indent=1))
    return result

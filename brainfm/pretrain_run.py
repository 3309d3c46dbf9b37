"""brainfm-pretrain: corpus stores -> DataModule -> MaskedPatchPretraining -> model file.

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
                  inline: dict | None = None) -> None:
    """Prepare each named dataset into ``store_root/<name>`` unless it is there already.

    A dataset is ``conf/dataset/<name>.yaml``, or, when ``inline`` has an entry for it, that
    entry merged over ``conf/dataset/folder.yaml`` (a dataset defined in an experiment file).
    """
    from omegaconf import OmegaConf

    from .cli import compose_config, prep_configs
    from .data.prep import prepare

    inline = inline or {}
    for name in datasets:
        ready = Path(store_root) / name / "windows.parquet"
        if ready.exists():
            continue
        if rank() > 0:  # rank 0 prepares; the others wait for its manifest
            deadline = time.time() + wait_s
            while not ready.exists():
                if time.time() > deadline:
                    raise TimeoutError(f"rank {rank()}: store {ready.parent} never appeared")
                time.sleep(1.0)
            continue
        if name in inline:
            cfg = compose_config(["dataset=folder"])
            OmegaConf.set_struct(cfg, False)
            cfg.dataset = OmegaConf.merge(cfg.dataset, {"name": name, **inline[name]})
        else:
            cfg = compose_config([f"dataset={name}"])
        spec, std = prep_configs(cfg)
        summary = prepare(spec, std, resolve_data_root(data_root), Path(store_root) / name)
        print(summary.as_text())


def preprocessing_contract(stores) -> dict:
    """What a model trained on these stores expects of its input (for the model file)."""
    metas = [s.meta for s in stores]
    return {"datasets": [m["dataset"]["name"] for m in metas],
            "standardise": metas[0]["standardise"] if metas else {},
            "standardise_per_dataset": {m["dataset"]["name"]: m["standardise"] for m in metas},
            "sfreq": metas[0]["sfreq"] if metas else None,
            "recording_ids": sorted({i for s in stores for i in s.recording_ids()})}


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

    from .checkpoint import save_model
    from .data.datamodule import BrainDataModule
    from .tasks.base import build_task
    from .tasks.checkpointing import RunCheckpoint, finish_or_stop, pretrain_logger

    out_dir = Path(cfg.output_dir)
    L.seed_everything(cfg.seed, workers=True)
    ensure_stores(cfg.data.datasets, Path(cfg.store_root), cfg.data_root)
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    dm = BrainDataModule(list(cfg.data.datasets), store_root=cfg.store_root,
                         patch_len=model_cfg["patch_len"], batch_size=cfg.data.batch_size,
                         num_workers=cfg.data.num_workers, val_fraction=cfg.data.val_fraction,
                         bucket_channels=cfg.data.bucket_channels, seed=cfg.seed,
                         max_abs=cfg.data.max_abs)
    task = build_task(OmegaConf.to_container(cfg.task, resolve=True), model_cfg,
                      cfg.seed)
    if cfg.compile:
        task.model = torch.compile(task.model)
    trainer_cfg = _supported_precision(OmegaConf.to_container(cfg.trainer, resolve=True))
    logger = pretrain_logger(cfg.logger, out_dir, cfg.resume)
    ckpt = RunCheckpoint(out_dir / "checkpoints", cfg.get("checkpoint_every_n_steps", 200))
    trainer = L.Trainer(default_root_dir=out_dir, logger=logger, enable_checkpointing=False,
                        callbacks=[ckpt, LearningRateMonitor("step")], **trainer_cfg)
    trainer.fit(task, datamodule=dm, ckpt_path=cfg.resume)
    finish_or_stop(ckpt, trainer)
    result = {"output_dir": str(out_dir), "global_step": int(trainer.global_step),
              **{k: float(v) for k, v in trainer.callback_metrics.items()}}
    if trainer.is_global_zero:
        if cfg.export:
            model = getattr(task.model, "_orig_mod", task.model)
            save_model(model, out_dir / "model.pt",
                       extra=preprocessing_contract(dm.full.stores))
            result["model_file"] = str(out_dir / "model.pt")
        (out_dir / "result.json").write_text(json.dumps(result, indent=1))
    return result

"""What every pretraining task shares: the optimiser and its learning-rate schedule, and the
count of training windows drawn per dataset (the corpus mix a run actually saw).

A task subclasses :class:`PretrainingTask`, keeps its backbone in ``self.model`` and saves
``lr``, ``weight_decay``, ``min_lr``, ``warmup_steps`` and ``total_steps`` as hyperparameters.
"""
from __future__ import annotations

import lightning as L
import torch

from .schedules import warmup_cosine


class PretrainingTask(L.LightningModule):
    """AdamW over ``self.model``'s trainable parameters, linear warm-up then cosine decay
    stepped per optimiser step."""

    def configure_optimizers(self):
        hp = self.hparams
        params = [p for p in self.model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=hp.lr, weight_decay=hp.weight_decay)
        # the schedule's horizon: fixed by config, or the trainer's planned number of steps
        total = max(int(hp.total_steps or self.trainer.estimated_stepping_batches), 1)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: warmup_cosine(s, total, hp.warmup_steps, hp.lr, hp.min_lr) / hp.lr)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def build_task(task_cfg: dict, model_cfg: dict, seed: int = 0) -> PretrainingTask:
    """The task a ``conf/task/*.yaml`` names with ``kind`` (``masked_patch`` when absent)."""
    cfg, model_cfg = dict(task_cfg), dict(model_cfg)
    kind = cfg.pop("kind", "masked_patch")
    family = model_cfg.pop("family", "criss_cross")
    wanted = {"masked_patch": "criss_cross", "diffusion": "diffusion"}
    if kind not in wanted:
        raise ValueError(f"task.kind={kind!r}; use one of {', '.join(wanted)}")
    if family != wanted[kind]:
        raise ValueError(f"task {kind!r} trains a {wanted[kind]} backbone but the model config "
                         f"is a {family} one -> pick a matching pair, e.g. task=diffusion "
                         "model=eegdm_tiny or task=masked_patch model=criss_cross_small")
    if kind == "masked_patch":
        from .pretrain import MaskedPatchPretraining as cls
    else:
        from .diffusion import DiffusionPretraining as cls
    return cls(model=model_cfg, seed=seed, **cfg)

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
    stepped per optimiser step; the training windows drawn per dataset (saved in
    checkpoints, so a resumed run reports the mix of the whole run)."""

    drawn: dict

    def count_drawn(self, batch: dict) -> None:
        """Add a training batch's windows to the per-dataset count."""
        if not hasattr(self, "drawn"):
            self.drawn = {}
        for code, count in zip(*batch["dataset"].unique(return_counts=True)):
            self.drawn[int(code)] = self.drawn.get(int(code), 0) + int(count)

    def dataset_names(self) -> dict[int, str]:
        """Dataset code in batches -> name, from the trainer's DataModule ({} without one)."""
        dm = getattr(self.trainer, "datamodule", None)
        return getattr(dm, "dataset_names", None) or {}

    def drawn_mix(self) -> dict[str, float]:
        """The share of training windows actually drawn from each dataset so far."""
        drawn = getattr(self, "drawn", {})
        names = self.dataset_names()
        total = max(sum(drawn.values()), 1)
        return {names.get(c, str(c)): n / total for c, n in sorted(drawn.items())}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["brainfm_drawn"] = dict(getattr(self, "drawn", {}))

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.drawn = {int(k): int(v) for k, v in checkpoint.get("brainfm_drawn", {}).items()}

    def configure_optimizers(self):
        hp = self.hparams
        # the backbone and any head the task adds (predictors); frozen copies (EMA
        # teachers) have requires_grad off
        params = [p for p in self.parameters() if p.requires_grad]
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

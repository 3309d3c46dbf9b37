"""What every pretraining task shares: the optimiser and its learning-rate schedule, and the
count of training windows drawn per dataset (the corpus mix a run actually saw).

A task subclasses :class:`PretrainingTask`, keeps its backbone in ``self.model`` and saves
``lr``, ``weight_decay``, ``min_lr``, ``warmup_steps`` and ``total_steps`` as hyperparameters.
"""
from __future__ import annotations

import lightning as L
import torch

from ..models.registry import DEFAULT_FAMILY, FAMILIES, get_family
from .schedules import warmup_cosine


class PretrainingTask(L.LightningModule):
    """AdamW over ``self.model``'s trainable parameters, linear warm-up then cosine decay
    stepped per optimiser step; the training windows drawn per dataset (saved in
    checkpoints, so a resumed run reports the mix of the whole run)."""

    drawn: dict
    #: The task kind it was built as (``conf/task``'s ``kind``), set by build_task.
    kind: str = ""
    #: The pretext targets the task offers (its ``objective`` argument), if it has a choice.
    OBJECTIVES: tuple[str, ...] = ()

    @classmethod
    def backbone_config(cls, model: dict) -> dict:
        """The constructor arguments of the backbone the task builds from its ``model``
        hyperparameter (which keeps the model config's ``family`` for the record)."""
        return {k: v for k, v in dict(model).items() if k != "family"}

    def ema_model(self):
        """The exponential moving average of the backbone's weights the task keeps (exported
        beside the weights, ema.safetensors), or None."""
        return None

    def pretext(self) -> dict:
        """What the run was trained to predict and how (for the checkpoint and its card)."""
        return {}

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
    """The task a ``conf/task/*.yaml`` names with ``kind`` for the model a
    ``conf/model/*.yaml`` describes (its ``family``; the default family when absent), as the
    family's record pairs them (:func:`check_task_pairing`)."""
    cfg = dict(task_cfg)
    kind, cls = check_task_pairing(cfg.pop("kind", None), model_cfg)
    task = cls(model=dict(model_cfg), seed=seed, **cfg)
    task.kind = kind  # the objective the checkpoint records
    return task


def check_task_pairing(kind: str | None, model_cfg: dict) -> tuple[str, type[PretrainingTask]]:
    """(kind, task class): the task ``kind`` (the default family's default task when None)
    that trains the model ``model_cfg`` describes; an error naming a matching pair
    otherwise."""
    family = get_family(dict(model_cfg).get("family"))
    if kind is None:
        kind = get_family(DEFAULT_FAMILY).default_task
    if kind not in family.tasks:
        owners = [f for f in FAMILIES.values() if kind in f.tasks]
        if not owners:
            known = sorted(k for f in FAMILIES.values() for k in f.tasks)
            raise ValueError(f"task.kind={kind!r}; use one of {', '.join(known)}")
        raise ValueError(f"task {kind!r} trains a {owners[0].name} backbone but the model config "
                         f"is a {family.name} one -> pick a matching pair, e.g. "
                         + " or ".join(f"task={f.default_task} model={f.default_config}"
                                       for f in FAMILIES.values()))
    return kind, family.task_class(kind)

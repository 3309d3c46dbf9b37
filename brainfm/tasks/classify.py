"""Supervised fine-tuning of a backbone with a classification head.

The default recipe is CBraMod's: AdamW (weight decay 0.05) with separate backbone and head
learning rates (optional layer-wise decay), linear warm-up then cosine decay to ``min_lr``
stepped per batch, label-smoothed class-weighted cross-entropy, gradient clipping (set on the
Trainer). Validation logs the loss (plain class-weighted cross-entropy, a proper score),
balanced accuracy and, for binary tasks, AUROC: the benchmark selects the epoch on one of them
(:data:`SELECTION`); the test rows of a fold never reach this module before its weights are
chosen.
"""
from __future__ import annotations

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from .schedules import warmup_cosine

# what model selection monitors, and in which direction ("auto": AUROC if binary, else loss)
SELECTION = {"loss": ("val/loss", "min"), "auroc": ("val/auroc", "max"),
             "balanced_accuracy": ("val/balanced_accuracy", "max")}


def selection_metric(select: str, n_classes: int) -> tuple[str, str]:
    """(logged name, "min" or "max") of the validation score that picks the epoch."""
    if select == "auto":
        select = "auroc" if n_classes == 2 else "loss"
    if select not in SELECTION:
        raise ValueError(f"select={select!r}: one of auto, {', '.join(SELECTION)}")
    if select == "auroc" and n_classes != 2:
        raise ValueError(f"select='auroc' needs a binary task, this one has {n_classes} "
                         "classes; use 'loss'")
    return SELECTION[select]


class FineTuning(L.LightningModule):
    def __init__(self, model: torch.nn.Module, n_classes: int, backbone_lr: float = 1e-4,
                 head_lr: float = 5e-4, weight_decay: float = 0.05,
                 layer_decay: float | None = None, class_weights=None,
                 label_smoothing: float = 0.1, warmup_epochs: float = 0.0,
                 min_lr: float = 1e-6):
        super().__init__()
        self.save_hyperparameters(ignore=["model"])
        self.model = model
        weights = None if class_weights is None else torch.as_tensor(class_weights,
                                                                     dtype=torch.float32)
        self.register_buffer("class_weights", weights, persistent=False)
        self._val = []

    def forward(self, batch: dict) -> torch.Tensor:
        return self.model(batch["x"], batch["sensors"], batch["channel_mask"])

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss = F.cross_entropy(self(batch), batch["y"], weight=self.class_weights,
                               label_smoothing=self.hparams.label_smoothing)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["y"]))
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        logits = self(batch)
        self.log("val/loss", F.cross_entropy(logits, batch["y"], weight=self.class_weights),
                 batch_size=len(batch["y"]))
        self._val.append((F.softmax(logits.float(), 1).cpu(), batch["y"].cpu()))

    def on_validation_epoch_end(self) -> None:
        if self._val:
            proba = torch.cat([p for p, _ in self._val]).numpy()
            true = torch.cat([t for _, t in self._val]).numpy()
            self.log("val/balanced_accuracy",
                     float(balanced_accuracy_score(true, proba.argmax(1))), prog_bar=True)
            if proba.shape[1] == 2 and len(np.unique(true)) == 2:
                self.log("val/auroc", float(roc_auc_score(true, proba[:, 1])))
        self._val = []

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        return {"proba": F.softmax(self(batch).float(), dim=1), "row": batch["row"]}

    def param_groups(self) -> list[dict]:
        """Head at ``head_lr``; backbone at ``backbone_lr``, decayed per layer from the top."""
        hp = self.hparams
        head = list(self.model.head.parameters())
        head_ids = {id(p) for p in head}
        layers = list(getattr(self.model, "layers", []))
        depth = {}
        for i, layer in enumerate(layers):
            for p in layer.parameters():
                depth[id(p)] = len(layers) - i          # 1 = the top layer
        groups: dict[float, list] = {}
        for p in self.model.parameters():
            if not p.requires_grad or id(p) in head_ids:
                continue
            scale = 1.0
            if hp.layer_decay:
                scale = hp.layer_decay ** depth.get(id(p), len(layers) + 1)
            groups.setdefault(hp.backbone_lr * scale, []).append(p)
        out = [{"params": ps, "lr": lr} for lr, ps in sorted(groups.items())]
        out.append({"params": [p for p in head if p.requires_grad], "lr": hp.head_lr})
        return out

    def configure_optimizers(self):
        hp = self.hparams
        groups = self.param_groups()
        opt = torch.optim.AdamW(groups, weight_decay=hp.weight_decay)
        total = int(self.trainer.estimated_stepping_batches)
        warmup = int(round(hp.warmup_epochs * total / max(self.trainer.max_epochs, 1)))
        # one factor per group: each decays from its own learning rate to the same min_lr
        factors = [lambda step, lr=g["lr"]: (warmup_cosine(step, total, warmup, lr,
                                                           min(hp.min_lr, lr)) / lr
                                             if lr > 0 else 1.0)
                   for g in groups]
        schedule = torch.optim.lr_scheduler.LambdaLR(opt, factors)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def balanced_class_weights(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """n / (n_classes x count): scikit-learn's "balanced" weights (imbalanced tasks, P300)."""
    counts = np.bincount(labels[labels >= 0], minlength=n_classes).astype(float)
    weights = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / n_classes, 0.0)
    return weights.astype(np.float32)

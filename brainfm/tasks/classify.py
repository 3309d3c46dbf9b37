"""Supervised fine-tuning of a backbone with a classification head.

Separate learning rates for backbone and head, optional layer-wise decay (deeper layers keep
more of their pretrained weights), class-weighted cross-entropy for imbalanced tasks, and a
validation balanced accuracy for early stopping and checkpoint selection; the test rows of a
fold never reach this module before its weights are chosen.
"""
from __future__ import annotations

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import balanced_accuracy_score


class FineTuning(L.LightningModule):
    def __init__(self, model: torch.nn.Module, n_classes: int, backbone_lr: float = 1e-4,
                 head_lr: float = 1e-3, weight_decay: float = 0.05,
                 layer_decay: float | None = None, class_weights=None):
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
        loss = F.cross_entropy(self(batch), batch["y"], weight=self.class_weights)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["y"]))
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        logits = self(batch)
        self.log("val/loss", F.cross_entropy(logits, batch["y"], weight=self.class_weights),
                 batch_size=len(batch["y"]))
        self._val.append((logits.argmax(1).cpu(), batch["y"].cpu()))

    def on_validation_epoch_end(self) -> None:
        if self._val:
            pred = torch.cat([p for p, _ in self._val]).numpy()
            true = torch.cat([t for _, t in self._val]).numpy()
            self.log("val/balanced_accuracy", float(balanced_accuracy_score(true, pred)),
                     prog_bar=True)
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
        return torch.optim.AdamW(self.param_groups(), weight_decay=self.hparams.weight_decay)


def balanced_class_weights(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """n / (n_classes x count): scikit-learn's "balanced" weights (imbalanced tasks, P300)."""
    counts = np.bincount(labels[labels >= 0], minlength=n_classes).astype(float)
    weights = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / n_classes, 0.0)
    return weights.astype(np.float32)

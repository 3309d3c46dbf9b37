"""Attention-pooling probe: a frozen backbone's tokens, weighted by one learned query.

The linear probe averages every token of a window, which weighs a token that carries the
task (an occipital channel in the alpha band, say) the same as one that does not. This probe
learns one query vector that scores each token, pools the tokens by the softmax of those
scores, and classifies the pooled vector linearly: D + D * D (keys) + D * classes parameters,
trained on the fold's training rows like the linear probe (class-balanced cross-entropy,
AdamW, a fixed number of epochs: no test row is ever looked at).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


class AttentionPool(nn.Module):
    """(B, T, D) tokens with a (B, T) validity mask -> (B, classes) logits."""

    def __init__(self, d_model: int, n_classes: int):
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.key = nn.Linear(d_model, d_model, bias=False)
        self.query = nn.Parameter(torch.zeros(d_model))   # starts as the plain mean
        self.out = nn.Linear(d_model, n_classes)

    def forward(self, tokens: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        h = self.norm(tokens)
        scores = self.key(h) @ self.query / h.shape[-1] ** 0.5
        weights = torch.softmax(scores.masked_fill(~valid, float("-inf")), dim=1)
        return self.out((weights[..., None] * h).sum(dim=1))


class AttentionPoolProbe:
    """scikit-learn-style estimator over token arrays: ``fit(X, y)``, ``predict``,
    ``predict_proba``. ``X``: (n, T, D) float tokens, padded tokens all-NaN (or give
    ``valid``)."""

    def __init__(self, epochs: int = 60, lr: float = 3e-3, weight_decay: float = 1e-2,
                 batch_size: int = 128, seed: int = 0):
        self.epochs, self.lr, self.weight_decay = epochs, lr, weight_decay
        self.batch_size, self.seed = batch_size, seed

    @staticmethod
    def _tensors(X) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.as_tensor(np.asarray(X, dtype=np.float32))
        valid = ~torch.isnan(x).any(dim=-1)
        return torch.nan_to_num(x), valid

    def fit(self, X, y) -> "AttentionPoolProbe":
        x, valid = self._tensors(X)
        # standardise each feature over the training rows' real tokens (the linear probe's
        # scaler); kept for prediction
        real = x[valid]
        self.mean_, self.std_ = real.mean(dim=0), real.std(dim=0).clamp_min(1e-6)
        x = (x - self.mean_) / self.std_
        self.classes_ = np.unique(y)
        target = torch.as_tensor(np.searchsorted(self.classes_, y))
        counts = torch.bincount(target, minlength=len(self.classes_)).float()
        weight = counts.sum() / (len(counts) * counts.clamp_min(1))
        g = torch.Generator().manual_seed(self.seed)
        torch.manual_seed(self.seed)
        self.module_ = AttentionPool(x.shape[-1], len(self.classes_))
        opt = torch.optim.AdamW(self.module_.parameters(), lr=self.lr,
                                weight_decay=self.weight_decay)
        loss_fn = nn.CrossEntropyLoss(weight=weight)
        self.module_.train()
        for _ in range(self.epochs):
            order = torch.randperm(len(x), generator=g)
            for start in range(0, len(x), self.batch_size):
                idx = order[start:start + self.batch_size]
                opt.zero_grad()
                loss_fn(self.module_(x[idx], valid[idx]), target[idx]).backward()
                opt.step()
        self.module_.eval()
        return self

    @torch.no_grad()
    def predict_proba(self, X) -> np.ndarray:
        x, valid = self._tensors(X)
        logits = self.module_((x - self.mean_) / self.std_, valid)
        return torch.softmax(logits, dim=1).numpy()

    def predict(self, X) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

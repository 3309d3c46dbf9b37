"""Latent prediction (data2vec / JEPA style): targets from an EMA teacher's layers.

The student sees the masked window; a teacher, an exponential moving average of the student,
sees the whole window. For each hidden patch the student (through a light predictor) predicts
the average of the teacher's top-k layer outputs, each normalised per token without learned
parameters, so that no layer's scale dominates and the target cannot shrink to zero. Because
the target is a representation and not the raw samples, copying the neighbours' waveform does
not solve it; it must carry whatever the teacher's deep layers encode about the window.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def latent_targets(layers: list[torch.Tensor], top_k: int) -> torch.Tensor:
    """Mean of the last ``top_k`` layers' outputs, each layer-normalised per token."""
    if not 1 <= top_k <= len(layers):
        raise ValueError(f"latent_top_k={top_k}: the backbone has {len(layers)} layers")
    chosen = layers[-top_k:]
    d = chosen[0].shape[-1]
    return torch.stack([F.layer_norm(h.float(), (d,)) for h in chosen]).mean(dim=0)


def ema_decay_at(step: int, total: int, start: float, end: float) -> float:
    """The teacher's decay, ramped linearly from ``start`` to ``end`` over ``total`` steps
    (data2vec's schedule: a fast-moving teacher early, a steady one late)."""
    frac = min(max(step / max(total, 1), 0.0), 1.0)
    return start + (end - start) * frac


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, decay: float) -> None:
    """teacher <- decay * teacher + (1 - decay) * student, parameter by parameter."""
    for t, s in zip(teacher.parameters(), student.parameters()):
        t.lerp_(s.detach().to(t.dtype), 1.0 - decay)
    for t, s in zip(teacher.buffers(), student.buffers()):
        t.copy_(s)


class LatentPredictor(nn.Module):
    """The student's light predictor: LayerNorm -> Linear -> GELU -> Linear, per token."""

    def __init__(self, d_model: int, hidden: int | None = None):
        super().__init__()
        hidden = hidden or 2 * d_model
        self.net = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, hidden), nn.GELU(),
                                 nn.Linear(hidden, d_model))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.net(tokens)

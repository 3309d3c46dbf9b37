"""Transforms a model applies to its input in the store's units, kept beside the models
so that heads, read-outs and pretraining tasks share one definition.

The staged mu-law (EEGDM's): identity on [-1, 1], mu-law compression beyond (continuous at
+-1). Signals are in the store's units (100 uV for EEG/iEEG, 1000 fT or fT/cm for MEG), so
only large excursions are compressed.
"""
from __future__ import annotations

import math

import torch


def staged_mu_law(x: torch.Tensor, mu: float = 255.0) -> torch.Tensor:
    """Identity on [-1, 1]; mu-law compression beyond (continuous at +-1)."""
    compressed = torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)
    return torch.where(x.abs() <= 1, x, compressed)


def inverse_staged_mu_law(y: torch.Tensor, mu: float = 255.0) -> torch.Tensor:
    expanded = torch.sign(y) * torch.expm1(y.abs() * math.log1p(mu)) / mu
    return torch.where(y.abs() <= 1, y, expanded)


__all__ = ["inverse_staged_mu_law", "staged_mu_law"]

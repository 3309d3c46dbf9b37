"""Compact convolutional baselines a BCI researcher would run: EEGNet and ShallowConvNet.

Both take (B, C, T) signals (or (B, C, N, P) patches, flattened) with the braindecode-style
signature; kernel lengths given in the papers for their sampling rates are rescaled to
``sfreq`` so that they span the same time. EEGNet: Lawhern et al. 2018 (EEGNet-8,2);
ShallowConvNet: Schirrmeister et al. 2017.
"""
from __future__ import annotations

import torch
from torch import nn


def _as_signal(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(2) if x.dim() == 4 else x


def _odd(n: float) -> int:
    n = max(int(round(n)), 1)
    return n if n % 2 else n + 1


class EEGNet(nn.Module):
    """Temporal conv -> depthwise spatial conv -> separable conv -> linear (EEGNet-8,2)."""

    def __init__(self, n_chans: int, n_outputs: int, n_times: int, sfreq: float = 200.0,
                 chs_info=None, f1: int = 8, depth: int = 2, f2: int = 16,
                 dropout: float = 0.25):
        super().__init__()
        k1 = _odd(sfreq / 2)                 # 64 samples at 128 Hz: half a second
        k2 = _odd(16 * sfreq / 128)          # 16 samples at 128 Hz
        pool1, pool2 = 4, 8
        self.features = nn.Sequential(
            nn.Conv2d(1, f1, (1, k1), padding=(0, k1 // 2), bias=False),
            nn.BatchNorm2d(f1),
            nn.Conv2d(f1, f1 * depth, (n_chans, 1), groups=f1, bias=False),
            nn.BatchNorm2d(f1 * depth), nn.ELU(), nn.AvgPool2d((1, pool1)), nn.Dropout(dropout),
            nn.Conv2d(f1 * depth, f1 * depth, (1, k2), padding=(0, k2 // 2),
                      groups=f1 * depth, bias=False),
            nn.Conv2d(f1 * depth, f2, 1, bias=False),
            nn.BatchNorm2d(f2), nn.ELU(), nn.AvgPool2d((1, pool2)), nn.Dropout(dropout))
        self.head = nn.Linear(f2 * (n_times // pool1 // pool2), n_outputs)

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        h = self.features(_as_signal(x).unsqueeze(1))
        return self.head(h.flatten(1))


class ShallowConvNet(nn.Module):
    """Temporal conv -> spatial conv -> square -> mean pool -> log -> linear (FBCSP-like)."""

    def __init__(self, n_chans: int, n_outputs: int, n_times: int, sfreq: float = 200.0,
                 chs_info=None, n_filters: int = 40, dropout: float = 0.5):
        super().__init__()
        k = max(int(round(25 * sfreq / 250)), 1)        # 25 samples at 250 Hz: 100 ms
        pool, stride = max(int(round(75 * sfreq / 250)), 1), max(int(round(15 * sfreq / 250)), 1)
        self.temporal = nn.Conv2d(1, n_filters, (1, k))
        self.spatial = nn.Conv2d(n_filters, n_filters, (n_chans, 1), bias=False)
        self.norm = nn.BatchNorm2d(n_filters)
        self.pool = nn.AvgPool2d((1, pool), stride=(1, stride))
        self.dropout = nn.Dropout(dropout)
        n_out = (n_times - k + 1 - pool) // stride + 1
        if n_out < 1:
            raise ValueError(f"{n_times} samples are too few for ShallowConvNet at {sfreq} Hz")
        self.head = nn.Linear(n_filters * n_out, n_outputs)

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        h = self.norm(self.spatial(self.temporal(_as_signal(x).unsqueeze(1))))
        h = torch.log(torch.clamp(self.pool(h * h), min=1e-6))
        return self.head(self.dropout(h).flatten(1))

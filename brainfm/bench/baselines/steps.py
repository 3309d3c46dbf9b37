"""Pipeline steps the classical and filter-bank baselines share.

Both :mod:`.classical` and :mod:`.filterbank` build on these, so neither imports the other's
internals: float64 windows (covariance solvers lose digits on float32), the class-balanced
logistic regression read-out, and a CSP that does not log on every fit.
"""
from __future__ import annotations

import numpy as np
from mne.decoding import CSP
from mne.utils import use_log_level
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import FunctionTransformer

MAX_ITER = 5000  # logistic regressions on standardised features converge well before this


def as_float64(X) -> np.ndarray:
    return np.asarray(X, dtype=np.float64)


def float64_windows(X) -> np.ndarray:
    """(windows, channels, times) as float64, or an error saying which shape came instead."""
    X = as_float64(X)
    if X.ndim != 3:
        raise ValueError(f"X must be (windows, channels, times), got shape {X.shape}")
    return X


def float64_step() -> FunctionTransformer:
    """First pipeline step: covariances of float32 windows lose digits the solvers need."""
    return FunctionTransformer(as_float64)


def balanced_logistic(C: float = 1.0) -> LogisticRegression:
    """Class-balanced LR: the benchmark's headline metric is balanced accuracy, and with
    unweighted classes a rare class (ERP targets, ictal segments) is simply never answered."""
    return LogisticRegression(C=C, class_weight="balanced", max_iter=MAX_ITER)


class QuietCSP(CSP):
    """MNE's CSP without the INFO lines (rank, covariances) it logs on every fit."""

    def fit(self, X, y):
        with use_log_level("warning"):
            return super().fit(X, y)

    def transform(self, X):
        with use_log_level("warning"):
            return super().transform(X)

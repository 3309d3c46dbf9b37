"""Scores of one fold and the paired test of two models (summaries: report.py, stats.py).

Metrics are scikit-learn's, chosen for imbalanced EEG tasks: balanced accuracy and Cohen's
kappa for every task, weighted F1, and for binary tasks the threshold-free AUROC and AUPRC
(average precision) from continuous scores.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

MULTICLASS_KEYS = ("accuracy", "balanced_accuracy", "cohen_kappa", "f1_weighted")
BINARY_KEYS = MULTICLASS_KEYS + ("auroc", "auprc")
#: the closed range of each score; a results cell holding anything else is not brainfm's
METRIC_RANGES = {"accuracy": (0.0, 1.0), "balanced_accuracy": (0.0, 1.0),
                 "cohen_kappa": (-1.0, 1.0), "f1_weighted": (0.0, 1.0), "auroc": (0.0, 1.0),
                 "auprc": (0.0, 1.0)}
#: scores that are NaN where a test set holds one class only (AUROC, AUPRC) or where
#: labels and predictions are one class (kappa's expected agreement is then 1)
MAY_BE_NAN = ("cohen_kappa", "auroc", "auprc")


def _positive_scores(y_score, n: int) -> np.ndarray:
    """Binary scores as one column: the positive class's column of (n, 2), or (n,) as is."""
    s = np.asarray(y_score, dtype=np.float64)
    if s.ndim == 2 and s.shape[1] == 2:
        s = s[:, 1]
    if s.shape != (n,):
        raise ValueError(f"binary y_score must be (n,) or (n, 2) with n={n}, got {s.shape}")
    return s


def classification_metrics(y_true, y_pred, y_score=None, n_classes=None) -> dict[str, float]:
    """Metrics of one set of predictions, as plain floats.

    Parameters
    ----------
    y_true, y_pred : array of int
        Class indices ``0 .. n_classes - 1``.
    y_score : array, optional
        Binary tasks: the positive class's score (n,) or per-class scores (n, 2), for AUROC
        and AUPRC (NaN without scores, or when ``y_true`` holds one class only).
    n_classes : int, optional
        Inferred from ``y_score``'s columns or the largest label; pass it when a fold may
        lack the top class, so that a binary task is never mistaken for a one-class one.

    Returns
    -------
    dict
        ``accuracy``, ``balanced_accuracy``, ``cohen_kappa``, ``f1_weighted``; binary tasks
        add ``auroc`` and ``auprc``.
    """
    from sklearn.metrics import (accuracy_score, average_precision_score,
                                 balanced_accuracy_score, cohen_kappa_score, f1_score,
                                 roc_auc_score)

    y_true = np.asarray(y_true).astype(np.int64).reshape(-1)
    y_pred = np.asarray(y_pred).astype(np.int64).reshape(-1)
    if len(y_true) != len(y_pred) or not len(y_true):
        raise ValueError(f"y_true ({len(y_true)}) and y_pred ({len(y_pred)}) must be "
                         "non-empty and of equal length")
    if n_classes is None:
        score_cols = np.ndim(y_score) == 2 and np.shape(y_score)[1]
        n_classes = max(int(score_cols or 0), int(max(y_true.max(), y_pred.max())) + 1, 2)
    n_classes = int(n_classes)
    labels = np.arange(n_classes)
    outside = sorted(set(np.r_[y_true, y_pred].tolist()) - set(labels.tolist()))
    if outside:
        raise ValueError(f"labels {outside} outside 0..{n_classes - 1}")
    out = {"accuracy": accuracy_score(y_true, y_pred),
           "balanced_accuracy": balanced_accuracy_score(y_true, y_pred),
           "cohen_kappa": cohen_kappa_score(y_true, y_pred, labels=labels),
           "f1_weighted": f1_score(y_true, y_pred, labels=labels, average="weighted",
                                   zero_division=0)}
    if n_classes == 2:
        out["auroc"] = out["auprc"] = float("nan")
        if y_score is not None and len(np.unique(y_true)) == 2:
            s = _positive_scores(y_score, len(y_true))
            out["auroc"] = roc_auc_score(y_true, s)
            out["auprc"] = average_precision_score(y_true, s)
    return {k: float(v) for k, v in out.items()}


def paired_wilcoxon(scores_a, scores_b, zero_method: str = "wilcox",
                    alternative: str = "two-sided") -> dict:
    """Wilcoxon signed-rank test of two models' per-subject scores.

    Pairs with a NaN score are dropped. Two pandas Series are paired by index (subject id),
    which must match; anything else is paired by position. No test is run (statistic and
    p-value NaN, ``message`` says why) with fewer than two pairs or when every difference
    is zero. Zero differences are otherwise handled by ``zero_method`` (scipy's; "wilcox"
    drops them); with ties or zeros scipy's "auto" method leaves the exact null
    distribution, and ``message`` says so.

    Returns
    -------
    dict
        ``statistic``, ``p_value``, ``n`` (pairs used), ``n_nonzero``,
        ``median_difference`` (a - b) and ``message`` (empty when the test ran cleanly).
    """
    from scipy.stats import wilcoxon

    if isinstance(scores_a, pd.Series) and isinstance(scores_b, pd.Series):
        if set(scores_a.index) != set(scores_b.index):
            only = sorted(set(scores_a.index) ^ set(scores_b.index), key=str)
            raise ValueError(f"subjects {only[:10]} are scored by one model only")
        scores_b = scores_b.loc[scores_a.index]
    a = np.asarray(scores_a, dtype=np.float64).reshape(-1)
    b = np.asarray(scores_b, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"paired scores differ in length: {len(a)} vs {len(b)}")
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    d = a - b
    out = {"statistic": float("nan"), "p_value": float("nan"), "n": int(len(d)),
           "n_nonzero": int(np.count_nonzero(d)),
           "median_difference": float(np.median(d)) if len(d) else float("nan"),
           "message": ""}
    notes = [f"{int((~keep).sum())} pairs with NaN dropped"] if (~keep).any() else []
    if len(d) < 2:
        out["message"] = "; ".join(notes + [f"no test: {len(d)} paired score(s), need >= 2"])
        return out
    if not out["n_nonzero"]:
        out["message"] = "; ".join(notes + [f"no test: all {len(d)} differences are zero "
                                            "(the two models score identically)"])
        return out
    res = wilcoxon(a, b, zero_method=zero_method, alternative=alternative)
    out["statistic"], out["p_value"] = float(res.statistic), float(res.pvalue)
    if out["n_nonzero"] < len(d):
        notes.append(f"{len(d) - out['n_nonzero']} zero differences "
                     f"(zero_method={zero_method!r})")
    if len(np.unique(np.abs(d[d != 0]))) < out["n_nonzero"]:
        notes.append("tied |differences|: the exact null distribution no longer applies "
                     "(scipy falls back to permutations or the normal approximation)")
    out["message"] = "; ".join(notes)
    return out

"""Metrics against scikit-learn and hand computation; the paired Wilcoxon test."""
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import wilcoxon
from sklearn import metrics as skm

from brainfm.bench.metrics import (BINARY_KEYS, MULTICLASS_KEYS,
                                   classification_metrics, paired_wilcoxon)


def test_binary_case_computed_by_hand():
    m = classification_metrics([0, 0, 1, 1], [0, 1, 1, 1], y_score=[0.1, 0.8, 0.7, 0.9])
    assert set(m) == set(BINARY_KEYS)
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["balanced_accuracy"] == pytest.approx((0.5 + 1.0) / 2)
    assert m["cohen_kappa"] == pytest.approx((0.75 - 0.5) / (1 - 0.5))  # p_o .75, p_e .5
    assert m["f1_weighted"] == pytest.approx((2 / 3 + 0.8) / 2)          # class F1s 2/3, 4/5
    assert m["auroc"] == pytest.approx(3 / 4)                  # 3 of 4 pos/neg pairs ordered
    assert m["auprc"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)  # precision 1 at R=.5, 2/3 at 1


def test_binary_metrics_equal_sklearn_and_accept_two_column_scores():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    score = np.clip(0.3 * y + rng.uniform(size=200), 0, 1)
    pred = (score > 0.6).astype(int)
    m = classification_metrics(y, pred, score)
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert m["cohen_kappa"] == pytest.approx(skm.cohen_kappa_score(y, pred))
    assert m["f1_weighted"] == pytest.approx(skm.f1_score(y, pred, average="weighted"))
    assert m["auroc"] == pytest.approx(skm.roc_auc_score(y, score))
    assert m["auprc"] == pytest.approx(skm.average_precision_score(y, score))
    two = classification_metrics(y, pred, np.c_[1 - score, score])
    assert two == m


def test_multiclass_metrics_equal_sklearn():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 300)
    pred = np.where(rng.uniform(size=300) < 0.6, y, rng.integers(0, 4, 300))
    m = classification_metrics(y, pred)
    assert set(m) == set(MULTICLASS_KEYS)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert m["cohen_kappa"] == pytest.approx(skm.cohen_kappa_score(y, pred))
    assert m["f1_weighted"] == pytest.approx(skm.f1_score(y, pred, average="weighted"))


@pytest.mark.filterwarnings("ignore::UserWarning")      # sklearn on one-class inputs
def test_binary_edge_cases():
    m = classification_metrics([0, 1, 1], [0, 1, 0])          # no scores: AUCs undefined
    assert set(m) == set(BINARY_KEYS) and math.isnan(m["auroc"]) and math.isnan(m["auprc"])
    m = classification_metrics([1, 1], [1, 0], [0.9, 0.2], n_classes=2)   # one class only
    assert math.isnan(m["auroc"])
    assert set(classification_metrics([0, 0], [0, 0], n_classes=3)) == set(MULTICLASS_KEYS)
    with pytest.raises(ValueError, match="outside"):
        classification_metrics([0, 2], [0, 1], n_classes=2)
    with pytest.raises(ValueError, match="equal length"):
        classification_metrics([0, 1], [0])


def test_paired_wilcoxon_matches_scipy():
    d = np.array([6, 8, 14, 16, 23, 24, 28, 29, 41, -48, 49, 56, 60, -67, 75], float)
    b = np.linspace(50, 60, len(d))
    r = paired_wilcoxon(b + d, b)
    assert r["statistic"] == 24.0                                         # scipy's docs example
    assert r["p_value"] == pytest.approx(0.041259765625)
    ref = wilcoxon(b + d, b)
    assert (r["statistic"], r["p_value"]) == (ref.statistic, ref.pvalue)
    assert r["n"] == r["n_nonzero"] == 15 and r["message"] == ""
    assert r["median_difference"] == pytest.approx(np.median(d))


def test_paired_wilcoxon_pairs_series_by_subject_and_handles_degenerate_input():
    a = pd.Series([0.7, 0.8, 0.9, 0.6, 0.75], index=["01", "02", "03", "04", "05"])
    b = pd.Series([0.5, 0.6, 0.7, 0.65, 0.7], index=["05", "04", "03", "02", "01"])
    r = paired_wilcoxon(a, b)
    ref = wilcoxon(a.to_numpy(), b.loc[a.index].to_numpy())
    assert r["p_value"] == pytest.approx(ref.pvalue)
    with pytest.raises(ValueError, match="one model only"):
        paired_wilcoxon(a, b.rename({"05": "06"}))
    r = paired_wilcoxon([0.5, 0.6, 0.7], [0.5, 0.6, 0.7])
    assert math.isnan(r["p_value"]) and "all 3 differences are zero" in r["message"]
    r = paired_wilcoxon([0.5, np.nan], [0.4, 0.3])
    assert r["n"] == 1 and math.isnan(r["statistic"]) and "need >= 2" in r["message"]
    assert "NaN dropped" in r["message"]
    r = paired_wilcoxon([0.5, 0.6, 0.7, 0.8], [0.5, 0.5, 0.6, 0.6])      # a zero and a tie
    assert r["n"] == 4 and r["n_nonzero"] == 3
    assert "zero differences" in r["message"] and "tied" in r["message"]
    assert r["p_value"] == pytest.approx(wilcoxon([0.5, 0.6, 0.7, 0.8],
                                                  [0.5, 0.5, 0.6, 0.6]).pvalue)
    with pytest.raises(ValueError, match="differ in length"):
        paired_wilcoxon([1, 2, 3], [1, 2])

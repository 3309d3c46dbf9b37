"""Multiplicity corrections, paired effect sizes, the hierarchical bootstrap and the report's
seed-averaged summary, against hand-computed values.

The expected corrections were computed by hand below and agree with statsmodels'
``multipletests`` (methods "holm" and "fdr_bh") to 1e-16 on these inputs.
"""
import numpy as np
import pandas as pd
import pytest

from brainfm.bench.report import markdown, pairwise_tests, summary
from brainfm.bench.stats import (benjamini_hochberg, cohens_dz, hierarchical_bootstrap, holm,
                                 rank_biserial, seed_summary)

P = [0.01, 0.04, 0.03, 0.005, 0.2]


def test_holm_by_hand():
    # sorted 0.005 0.01 0.03 0.04 0.2 times 5 4 3 2 1 = 0.025 0.04 0.09 0.08 0.2, then the
    # running maximum: 0.025 0.04 0.09 0.09 0.2
    assert holm(P) == pytest.approx([0.04, 0.09, 0.09, 0.025, 0.2])
    assert holm([0.3, 0.6]) == pytest.approx([0.6, 0.6])          # capped at the step
    assert holm([0.9, 0.8]) == pytest.approx([1.0, 1.0])          # and at 1


def test_benjamini_hochberg_by_hand():
    # sorted p * 5 / rank = 0.025 0.025 0.05 0.05 0.2, running minimum from the top
    assert benjamini_hochberg(P) == pytest.approx([0.025, 0.05, 0.05, 0.025, 0.2])


def test_corrections_leave_nan_out_of_the_family():
    """A pair that could not be tested (NaN p) neither counts in m nor gets a p-value."""
    h = holm([0.01, np.nan, 0.04])
    assert np.isnan(h[1]) and h[[0, 2]] == pytest.approx([0.02, 0.04])
    q = benjamini_hochberg([0.01, np.nan, 0.04])
    assert np.isnan(q[1]) and q[[0, 2]] == pytest.approx([0.02, 0.04])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        holm([0.5, 1.5])


def test_ssvep_probe_p_value_does_not_survive_holm_over_36_pairs():
    """The issue's example: p = 0.0068 is one of 36 pairs (9 pipelines); Holm multiplies the
    smallest p by 36, so it cannot stay below 0.05."""
    family = np.r_[0.0068, np.full(35, 0.5)]
    assert holm(family)[0] == pytest.approx(0.0068 * 36)
    assert holm(family)[0] > 0.05 and benjamini_hochberg(family)[0] > 0.05


def test_paired_effect_sizes_by_hand():
    d = [1.0, -2.0, 3.0, 4.0, 0.0]                 # zero dropped: ranks 1 2 3 4
    assert rank_biserial(d) == pytest.approx((1 + 3 + 4 - 2) / 10)
    assert rank_biserial([0.1, 0.2]) == 1.0 and np.isnan(rank_biserial([0.0, 0.0]))
    assert cohens_dz([1.0, 2.0, 3.0]) == pytest.approx(2.0)       # mean 2, sd 1
    assert np.isnan(cohens_dz([1.0])) and np.isnan(cohens_dz([2.0, 2.0]))


def test_bootstrap_ci_collapses_without_noise_and_widens_with_seed_noise():
    a = np.full((6, 1), 0.7)
    b = np.full((6, 1), 0.5)
    assert hierarchical_bootstrap(a, b, n_boot=200) == pytest.approx((0.2, 0.2, 0.2))
    rng = np.random.default_rng(0)
    subject = rng.normal(0, 0.05, size=(12, 1))
    quiet = 0.6 + subject + rng.normal(0, 0.001, size=(12, 5))
    noisy = 0.6 + subject + rng.normal(0, 0.1, size=(12, 5))
    est_q, lo_q, hi_q = hierarchical_bootstrap(quiet, n_boot=2000)
    est_n, lo_n, hi_n = hierarchical_bootstrap(noisy, n_boot=2000)
    assert lo_q < est_q < hi_q and lo_n < est_n < hi_n
    assert hi_n - lo_n > 1.2 * (hi_q - lo_q)       # seed noise is part of the interval
    # the same seed reproduces the interval; rows must pair
    assert hierarchical_bootstrap(noisy, seed=3) == hierarchical_bootstrap(noisy, seed=3)
    with pytest.raises(ValueError, match="same subjects"):
        hierarchical_bootstrap(a, b[:3])


def test_seed_summary_averages_seeds_before_subjects():
    m = np.array([[0.6, 0.8], [0.4, 0.6], [0.5, 0.7]])   # 3 subjects x 2 seeds
    s = seed_summary(m)
    assert s["n"] == 3 and s["n_seeds"] == 2
    assert s["mean"] == pytest.approx(0.6)
    assert s["sd"] == pytest.approx(np.std([0.7, 0.5, 0.6], ddof=1))   # across subjects only
    assert s["seed_sd"] == pytest.approx(np.std([0.5, 0.7], ddof=1))   # across seeds
    assert np.isnan(seed_summary(m[:, :1])["seed_sd"])


def _tidy(scores: dict) -> pd.DataFrame:
    """Tidy rows of {pipeline: (subjects, seeds) matrix} as the runner writes them."""
    rows = []
    for pipe, m in scores.items():
        for i, row in enumerate(np.asarray(m)):
            for seed, v in enumerate(row):
                rows.append(dict(dataset="d", pipeline=pipe, protocol="loso",
                                 fold=f"test-subject={i:02d}", subject=f"{i:02d}", seed=seed,
                                 metric="balanced_accuracy", value=v))
    return pd.DataFrame(rows)


def test_report_counts_subjects_and_corrects_within_the_family():
    rng = np.random.default_rng(1)
    base = rng.uniform(0.4, 0.8, size=(10, 1))
    scores = {"a": base + 0.10 + rng.normal(0, 0.02, (10, 3)),
              "b": base + rng.normal(0, 0.02, (10, 3)),
              "c": base + 0.01 + rng.normal(0, 0.02, (10, 3))}
    table = _tidy(scores)
    part = summary(table)["d", "loso"].set_index("pipeline")
    assert (part["n"] == 10).all() and (part["n_seeds"] == 3).all()   # not 30 pooled rows
    assert part.loc["a", "balanced_accuracy_mean"] == pytest.approx(scores["a"].mean())
    tests = pairwise_tests(table, "d", "loso", n_boot=500)
    assert len(tests) == 3
    assert tests["p_holm"].to_numpy() == pytest.approx(holm(tests["p"].to_numpy()))
    assert tests["q_bh"].to_numpy() == pytest.approx(benjamini_hochberg(tests["p"].to_numpy()))
    ab = tests[(tests["a"] == "a") & (tests["b"] == "b")].iloc[0]
    assert ab["rank_biserial"] == 1.0 and ab["ci_low"] > 0.05 and ab["mean_diff"] > 0.08


def test_summary_shows_units_seeds_bands_and_what_validation_chose():
    rng = np.random.default_rng(0)
    table = _tidy({"net": rng.uniform(0.5, 0.8, (5, 2)), "csp": rng.uniform(0.5, 0.8, (5, 2))})
    cells = pd.DataFrame(
        [dict(dataset="d", pipeline="net", fold=f"f{i}", seed=s, seconds=1.0,
              selected_epoch=3 + i, best_val_auroc=0.6 + 0.01 * i)
         for i in range(5) for s in (0, 1)]
        + [dict(dataset="d", pipeline="csp", fold=f"f{i}", seed=s, seconds=2.0,
                band="8-30 Hz", window_s=5.0) for i in range(5) for s in (0, 1)])
    text = markdown(table, cells)
    assert "| subjects | seeds | seed sd | s / fold | selected epoch | best val |" in text
    net = next(line for line in text.splitlines() if line.startswith("| net |"))
    assert net.endswith("| 5 | 2 | " + format(np.std(table[table["pipeline"] == "net"]
                                                         .groupby("seed")["value"].mean(),
                                                         ddof=1), ".3f")
                        + " | 1.0 | 5 | auroc 0.620 |")          # medians over folds
    assert "| csp (8-30 Hz, 5 s) |" in text and "| p Holm | q BH |" in text

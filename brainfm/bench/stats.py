"""Statistics a reviewer accepts: multiplicity-corrected p-values, paired effect sizes and
hierarchical bootstrap confidence intervals.

A benchmark table compares every pair of pipelines on one dataset: that family of tests is
corrected together (Holm controls the family-wise error, Benjamini-Hochberg the false
discovery rate). Effects are paired per subject (or fold): the median and mean difference,
the matched-pairs rank-biserial correlation and Cohen's d_z. Confidence intervals resample
subjects, then the seeds (runs, initialisations) within each subject, so that seed noise and
subject sampling both widen them.
"""
from __future__ import annotations

import warnings

import numpy as np
from scipy.stats import rankdata


def _pvalues(p) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    ok = np.isfinite(p)
    if ((p[ok] < 0) | (p[ok] > 1)).any():
        raise ValueError(f"p-values must lie in [0, 1], got {p[ok][(p[ok] < 0) | (p[ok] > 1)]}")
    return p, ok


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error); NaN entries stay NaN and are
    not counted in the family."""
    p, ok = _pvalues(pvalues)
    out = np.full_like(p, np.nan)
    q = p[ok]
    m = len(q)
    if not m:
        return out
    order = np.argsort(q, kind="stable")
    adj = np.maximum.accumulate((m - np.arange(m)) * q[order])
    res = np.empty(m)
    res[order] = np.minimum(adj, 1.0)
    out[ok] = res
    return out


def benjamini_hochberg(pvalues) -> np.ndarray:
    """Benjamini-Hochberg step-up adjusted p-values (q-values, false discovery rate); NaN
    entries stay NaN and are not counted in the family."""
    p, ok = _pvalues(pvalues)
    out = np.full_like(p, np.nan)
    q = p[ok]
    m = len(q)
    if not m:
        return out
    order = np.argsort(q, kind="stable")
    scaled = q[order] * m / np.arange(1, m + 1)
    adj = np.minimum.accumulate(scaled[::-1])[::-1]
    res = np.empty(m)
    res[order] = np.minimum(adj, 1.0)
    out[ok] = res
    return out


CORRECTIONS = {"holm": holm, "fdr_bh": benjamini_hochberg}


def rank_biserial(differences) -> float:
    """Matched-pairs rank-biserial correlation of paired differences: (R+ - R-) / (R+ + R-)
    over the ranks of |d| (zeros dropped, as the Wilcoxon test drops them); +1 when every
    difference is positive. NaN without a non-zero difference."""
    d = np.asarray(differences, dtype=np.float64)
    d = d[np.isfinite(d) & (d != 0)]
    if not len(d):
        return float("nan")
    ranks = rankdata(np.abs(d))
    return float((ranks[d > 0].sum() - ranks[d < 0].sum()) / ranks.sum())


def cohens_dz(differences) -> float:
    """Cohen's d_z: the mean paired difference over its sample standard deviation (NaN with
    fewer than two pairs or no spread)."""
    d = np.asarray(differences, dtype=np.float64)
    d = d[np.isfinite(d)]
    if len(d) < 2:
        return float("nan")
    sd = d.std(ddof=1)
    return float(d.mean() / sd) if sd > 0 else float("nan")


def hierarchical_bootstrap(a, b=None, n_boot: int = 2000, ci: float = 0.95, seed: int = 0,
                           statistic=np.mean) -> tuple[float, float, float]:
    """Point estimate and percentile CI of ``statistic`` over subjects, resampling subjects
    and then seeds (runs) within each subject.

    Parameters
    ----------
    a, b : array (subjects, seeds)
        Scores of one pipeline (and, for a paired difference, of another) per subject and
        seed; NaN marks a seed a subject lacks. ``a`` and ``b`` share their rows (subjects);
        their seeds are resampled independently (a deterministic pipeline has one column).
    statistic : callable
        Of the per-subject (seed-averaged) scores, or differences ``a - b``: the mean by
        default.

    Returns
    -------
    (estimate, low, high)
    """
    a = np.atleast_2d(np.asarray(a, dtype=np.float64))
    mats = [a] if b is None else [a, np.atleast_2d(np.asarray(b, dtype=np.float64))]
    if b is not None and mats[1].shape[0] != a.shape[0]:
        raise ValueError(f"paired scores need the same subjects: {a.shape[0]} vs "
                         f"{mats[1].shape[0]} rows")
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1), got {ci}")
    keep = np.all([np.isfinite(m).any(axis=1) for m in mats], axis=0)
    mats = [m[keep] for m in mats]
    n = len(mats[0])
    nan = float("nan")
    if n == 0:
        return nan, nan, nan

    def unit_scores(means):
        return means[0] - means[1] if len(means) == 2 else means[0]

    estimate = float(statistic(unit_scores([np.nanmean(m, axis=1) for m in mats])))
    if n < 2:
        return estimate, nan, nan
    rng = np.random.default_rng(seed)
    subjects = rng.integers(n, size=(n_boot, n))
    means = []
    for m in mats:
        picked = m[subjects]                                   # (B, n, seeds)
        seeds = rng.integers(m.shape[1], size=picked.shape)
        resampled = np.take_along_axis(picked, seeds, axis=2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)     # a draw of missing seeds only
            avg = np.nanmean(resampled, axis=2)
        # ... falls back to the subject's own mean
        means.append(np.where(np.isfinite(avg), avg, np.nanmean(picked, axis=2)))
    boots = np.apply_along_axis(statistic, 1, unit_scores(means))
    lo, hi = np.quantile(boots, [(1 - ci) / 2, (1 + ci) / 2])
    return estimate, float(lo), float(hi)


def seed_summary(scores) -> dict:
    """Headline numbers of one pipeline from its (subjects, seeds) scores.

    ``mean`` and ``sd`` across subjects of the seed-averaged score (subjects are the unit
    the conclusion is about); ``seed_sd``, the spread across seeds of the subject-mean score
    (what re-running with another seed changes; NaN with one seed); ``n`` subjects and
    ``n_seeds``.
    """
    m = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    m = m[np.isfinite(m).any(axis=1)]
    m = m[:, np.isfinite(m).any(axis=0)] if m.size else m
    nan = float("nan")
    if not m.size:
        return {"mean": nan, "sd": nan, "seed_sd": nan, "n": 0, "n_seeds": 0}
    per_subject = np.nanmean(m, axis=1)
    per_seed = np.nanmean(m, axis=0)
    return {"mean": float(per_subject.mean()),
            "sd": float(per_subject.std(ddof=1)) if len(per_subject) > 1 else nan,
            "seed_sd": float(per_seed.std(ddof=1)) if len(per_seed) > 1 else nan,
            "n": int(len(per_subject)), "n_seeds": int(m.shape[1])}


def crossed_bootstrap(a, b=None, n_boot: int = 20000, ci: float = 0.95,
                      seed: int = 0) -> tuple[float, float, float, float]:
    """Mean per-subject score (or difference ``a - b``) with a CI and a two-sided p-value that
    include run-to-run variance, for runs that every subject shares.

    A pretraining run (or a random initialisation) is one network scored on every subject:
    runs and subjects are crossed, not nested. Each draw resamples the subjects and,
    independently, the runs of each arm (the same runs for every subject of the draw), so
    that a lucky run lifts every subject of its draw, as it would a replication.
    :func:`hierarchical_bootstrap` resamples seeds within each subject instead, which
    averages a shared run effect away.

    Parameters
    ----------
    a, b : array (subjects, runs)

    Returns
    -------
    (estimate, low, high, p): p is the bootstrap's two-sided sign probability,
    2 * min(P(stat <= 0), P(stat >= 0)), capped at 1.
    """
    mats = [np.atleast_2d(np.asarray(a, dtype=np.float64))]
    if b is not None:
        mats.append(np.atleast_2d(np.asarray(b, dtype=np.float64)))
        if mats[1].shape[0] != mats[0].shape[0]:
            raise ValueError(f"paired scores need the same subjects: {mats[0].shape[0]} vs "
                             f"{mats[1].shape[0]} rows")
    keep = np.all([np.isfinite(m).all(axis=1) for m in mats], axis=0)
    mats = [m[keep] for m in mats]
    n = len(mats[0])
    nan = float("nan")
    if n == 0:
        return nan, nan, nan, nan

    means = [m.mean(axis=1) for m in mats]
    estimate = float((means[0] - means[1] if len(means) == 2 else means[0]).mean())
    if n < 2:
        return estimate, nan, nan, nan
    rng = np.random.default_rng(seed)
    subjects = rng.integers(n, size=(n_boot, n))
    unit = 0.0
    for sign, m in zip((1.0, -1.0), mats):
        runs = rng.integers(m.shape[1], size=(n_boot, m.shape[1]))
        per_draw = m[:, runs].mean(axis=-1).T                  # (n_boot, subjects)
        unit = unit + sign * np.take_along_axis(per_draw, subjects, axis=1)
    boots = unit.mean(axis=1)
    lo, hi = np.quantile(boots, [(1 - ci) / 2, (1 + ci) / 2])
    p = min(1.0, 2 * min((boots <= 0).mean(), (boots >= 0).mean()))
    return estimate, float(lo), float(hi), float(max(p, 1.0 / n_boot))

"""Tables and plots from the tidy results.

The unit a conclusion is about is the subject (or the fold, where a dataset has no subject
ids or a single subject): each unit's score is first averaged over seeds, then summarised as
mean +- sd across units; the spread across seeds is reported separately. Every pair of
pipelines on a dataset is compared with a paired Wilcoxon test, corrected within that
dataset's family (Holm and Benjamini-Hochberg), with paired effect sizes and a hierarchical
bootstrap CI (:mod:`brainfm.bench.stats`).
"""
from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

from .metrics import paired_wilcoxon
from .stats import (benjamini_hochberg, cohens_dz, hierarchical_bootstrap, holm,
                    rank_biserial, seed_summary)

MAIN_METRICS = ("balanced_accuracy", "cohen_kappa", "f1_weighted", "auroc", "auprc")
TEST_METRIC = "balanced_accuracy"


def scoring_units(table: pd.DataFrame) -> pd.DataFrame:
    """The rows statistics run over: per-subject rows; for a dataset scored per fold only (no
    subject ids) or with a single subject (within-subject folds), its fold rows with the
    fold's name in ``subject``."""
    by_subject = table["subject"] != "__fold__"
    n_subjects = table[by_subject].groupby("dataset")["subject"].nunique()
    fold_only = ~table["dataset"].isin(n_subjects[n_subjects >= 2].index)
    folds = table[fold_only & ~by_subject].assign(subject=lambda t: t["fold"].astype(str))
    return pd.concat([table[by_subject & ~fold_only], folds], ignore_index=True)


def unit_name(table: pd.DataFrame, dataset: str) -> str:
    """What a dataset's statistics count: ``subjects`` or ``folds``."""
    rows = table[(table["dataset"] == dataset) & (table["subject"] != "__fold__")]
    return "subjects" if rows["subject"].nunique() >= 2 else "folds"


def unit_seed_scores(table: pd.DataFrame) -> pd.DataFrame:
    """Scores per (dataset, pipeline, protocol, subject or fold, seed, metric): a unit scored
    by several folds of one seed (within-subject k-fold) or twice in a merged table is
    averaged."""
    rows = scoring_units(table)
    return (rows.groupby(["dataset", "pipeline", "protocol", "subject", "seed", "metric"])
            ["value"].mean().reset_index())


def per_subject(table: pd.DataFrame) -> pd.DataFrame:
    """Scores per (dataset, pipeline, protocol, subject or fold), averaged over seeds."""
    return (unit_seed_scores(table)
            .groupby(["dataset", "pipeline", "protocol", "subject", "metric"])["value"]
            .mean().reset_index())


def _matrix(scores: pd.DataFrame, units=None) -> pd.DataFrame:
    """(units, seeds) matrix of one pipeline's scores (NaN where a seed is missing)."""
    m = scores.pivot(index="subject", columns="seed", values="value")
    return m if units is None else m.reindex(units)


def summary(table: pd.DataFrame) -> dict[tuple[str, str], pd.DataFrame]:
    """Per (dataset, protocol): one row per pipeline with ``<metric>_mean`` and
    ``<metric>_sd`` across units of the seed-averaged score, ``<metric>_seed_sd`` (spread
    across seeds of the unit-mean score), ``n`` units and ``n_seeds``."""
    scores = unit_seed_scores(table)
    out = {}
    for (dataset, protocol), part in scores.groupby(["dataset", "protocol"]):
        metrics = [m for m in MAIN_METRICS if m in set(part["metric"])]
        rows = []
        for pipeline, pp in part.groupby("pipeline"):
            row = {"pipeline": pipeline}
            for metric in metrics:
                s = seed_summary(_matrix(pp[pp["metric"] == metric]).to_numpy())
                row |= {f"{metric}_mean": s["mean"], f"{metric}_sd": s["sd"],
                        f"{metric}_seed_sd": s["seed_sd"]}
                if metric == metrics[0]:
                    row |= {"n": s["n"], "n_seeds": s["n_seeds"]}
            rows.append(row)
        out[dataset, protocol] = pd.DataFrame(rows)
    return out


def pairwise_tests(table: pd.DataFrame, dataset: str, protocol: str,
                   metric: str = TEST_METRIC, n_boot: int = 2000, seed: int = 0
                   ) -> pd.DataFrame:
    """Every pair of pipelines on one dataset: Wilcoxon signed-rank across units (subjects
    or folds, seed-averaged), Holm and Benjamini-Hochberg adjusted over this family, and
    effects of a - b: median and mean difference with a 95 % bootstrap CI (subjects, then
    seeds within subject, resampled), rank-biserial r and Cohen's d_z."""
    scores = unit_seed_scores(table)
    part = scores[(scores["dataset"] == dataset) & (scores["protocol"] == protocol)
                  & (scores["metric"] == metric)]
    rows = []
    for a, b in combinations(sorted(part["pipeline"].unique()), 2):
        ma, mb = (_matrix(part[part["pipeline"] == p]) for p in (a, b))
        units = ma.index.intersection(mb.index)
        ma, mb = ma.loc[units], mb.loc[units]
        sa, sb = ma.mean(axis=1), mb.mean(axis=1)
        test = paired_wilcoxon(sa, sb)
        diff = (sa - sb).to_numpy()
        est, lo, hi = hierarchical_bootstrap(ma.to_numpy(), mb.to_numpy(), n_boot=n_boot,
                                             seed=seed)
        rows.append({"a": a, "b": b, "n": test["n"], "median_diff": test["median_difference"],
                     "mean_diff": est, "ci_low": lo, "ci_high": hi,
                     "rank_biserial": rank_biserial(diff), "cohens_dz": cohens_dz(diff),
                     "p": test["p_value"], "note": test["message"]})
    out = pd.DataFrame(rows, columns=["a", "b", "n", "median_diff", "mean_diff", "ci_low",
                                      "ci_high", "rank_biserial", "cohens_dz", "p", "note"])
    out["p_holm"] = holm(out["p"].to_numpy())
    out["q_bh"] = benjamini_hochberg(out["p"].to_numpy())
    return out


def _fmt(x: float, spec: str = ".3f") -> str:
    return "-" if x is None or not np.isfinite(x) else format(x, spec)


def markdown(table: pd.DataFrame, cells: pd.DataFrame | None = None) -> str:
    """Per dataset: pipelines x metrics as mean +- sd across units (subjects or folds) of the
    seed-averaged score, the seed spread of the first metric, with ``cells``
    (:meth:`ResultsStore.frames`) the band and window a classical baseline reads, the
    median seconds, selected epoch and best validation score per fold (what a sweep chooses
    on: never the test columns); then the corrected pairwise tests."""
    if table.empty:
        return "(no results)"
    per_cell = pd.DataFrame() if cells is None else cells
    medians = {col: (per_cell.groupby(["dataset", "pipeline"])[col].median().to_dict()
                     if col in per_cell else {}) for col in ("seconds", "selected_epoch")}
    val_cols = [c for c in per_cell.columns if str(c).startswith("best_val_")]
    best_val = {(d, p, c[len("best_val_"):]): v for c in val_cols for (d, p), v in
                per_cell.groupby(["dataset", "pipeline"])[c].median().dropna().items()}
    bands = ({} if "band" not in per_cell else
             per_cell.dropna(subset=["band"]).groupby(["dataset", "pipeline"])
             .agg({"band": "first", "window_s": "first"}).to_dict("index"))
    out = []
    for (dataset, protocol), part in summary(table).items():
        metrics = [m for m in MAIN_METRICS if f"{m}_mean" in part.columns]
        unit = unit_name(table, dataset)
        out += [f"### {dataset} ({protocol})", "",
                f"Mean +- sd across {unit} of each {unit[:-1]}'s seed-averaged score; "
                f"'seed sd': sd across seeds of the mean over {unit} ({metrics[0]}).", "",
                "| pipeline | " + " | ".join(metrics)
                + f" | {unit} | seeds | seed sd | s / fold | selected epoch | best val |",
                "|---|" + "---|" * (len(metrics) + 6)]
        for row in part.to_dict("records"):
            entries = ["-" if not np.isfinite(row[f"{m}_mean"]) else
                       f"{row[f'{m}_mean']:.3f} +- {np.nan_to_num(row[f'{m}_sd']):.3f}"
                       for m in metrics]
            key = (dataset, row["pipeline"])
            sec, epoch = (medians[c].get(key, np.nan) for c in ("seconds", "selected_epoch"))
            val = " ".join(f"{m} {v:.3f}" for (d, p, m), v in best_val.items() if (d, p) == key)
            band = bands.get(key)
            name = row["pipeline"] + (f" ({band['band']}, {band['window_s']:g} s)" if band
                                      else "")
            out.append(f"| {name} | " + " | ".join(entries)
                       + f" | {int(row['n'])} | {int(row['n_seeds'])} | "
                       f"{_fmt(row[f'{metrics[0]}_seed_sd'])} | {_fmt(sec, '.1f')} | "
                       f"{_fmt(epoch, '.0f')} | {val or '-'} |")
        out.append("")
        out += test_lines(table, dataset, protocol)
    return "\n".join(out)


def test_lines(table, dataset, protocol, metric=TEST_METRIC) -> list[str]:
    """The pairwise tests of one dataset as a Markdown table (see :func:`pairwise_tests`)."""
    tests = pairwise_tests(table, dataset, protocol, metric)
    if tests.empty:
        return []
    unit = unit_name(table, dataset)
    lines = [f"Paired Wilcoxon signed-rank tests on {metric} across {unit} "
             f"({len(tests)} pairs; p adjusted within this dataset's family: Holm, and "
             "Benjamini-Hochberg q). Effects are a - b: median and mean difference with a "
             f"95 % CI from a bootstrap over {unit} then seeds, rank-biserial r, Cohen's d_z.",
             "", "| a | b | n | median a-b | mean a-b [95 % CI] | r | d_z | p | p Holm | q BH |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in tests.to_dict("records"):
        lines.append(f"| {r['a']} | {r['b']} | {r['n']} | {_fmt(r['median_diff'], '+.3f')} | "
                     f"{_fmt(r['mean_diff'], '+.3f')} [{_fmt(r['ci_low'], '+.3f')}, "
                     f"{_fmt(r['ci_high'], '+.3f')}] | {_fmt(r['rank_biserial'], '+.2f')} | "
                     f"{_fmt(r['cohens_dz'], '+.2f')} | {_fmt(r['p'], '.2g')} | "
                     f"{_fmt(r['p_holm'], '.2g')} | {_fmt(r['q_bh'], '.2g')} |")
    return lines + [""]


def plots(table: pd.DataFrame, out_dir: Path, metric: str = "balanced_accuracy") -> list[Path]:
    """Per dataset: a box plot per pipeline and the per-subject scores, as PNG files."""
    import logging

    # a Figure of its own, not pyplot: no global backend switch (a notebook keeps its inline
    # plots) and no display needed
    from matplotlib.figure import Figure

    logging.getLogger("matplotlib.category").setLevel(logging.WARNING)  # subject ids as text

    subj = per_subject(table)
    subj = subj[subj["metric"] == metric]
    paths = []
    for (dataset, protocol), part in subj.groupby(["dataset", "protocol"]):
        pipes = sorted(part["pipeline"].unique())
        fig = Figure(figsize=(11, 4))
        ax1, ax2 = fig.subplots(1, 2)
        ax1.boxplot([part[part["pipeline"] == p]["value"] for p in pipes])
        ax1.set_xticks(range(1, len(pipes) + 1), pipes, rotation=30, ha="right")
        ax1.set_ylabel(metric)
        ax1.set_title(f"{dataset}: per pipeline ({protocol})")
        for p in pipes:
            rows = part[part["pipeline"] == p].sort_values("subject")
            ax2.plot(rows["subject"].astype(str), rows["value"], "o-", label=p, alpha=0.8)
        unit = unit_name(table, dataset)
        ax2.set_xlabel(unit[:-1])
        ax2.tick_params(axis="x", rotation=90)
        ax2.set_title(f"per {unit[:-1]}")
        ax2.legend(fontsize=7)
        fig.tight_layout()
        path = out_dir / f"{dataset}_{protocol}_{metric}.png"
        fig.savefig(path, dpi=110)
        paths.append(path)
    return paths

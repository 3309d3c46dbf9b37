"""Tables and plots from the tidy results: mean +- sd across subjects (or folds, where a
dataset has no subject ids) and seeds, paired tests."""
from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

from .metrics import paired_wilcoxon

MAIN_METRICS = ("balanced_accuracy", "cohen_kappa", "f1_weighted", "auroc", "auprc")


def scoring_units(table: pd.DataFrame) -> pd.DataFrame:
    """The rows statistics run over: per-subject rows, or, for a dataset scored per fold only
    (no subject ids), its fold rows with the fold's name in ``subject``."""
    by_subject = table["subject"] != "__fold__"
    fold_only = ~table["dataset"].isin(table.loc[by_subject, "dataset"].unique())
    folds = table[fold_only].assign(subject=lambda t: t["fold"].astype(str))
    return pd.concat([table[by_subject], folds], ignore_index=True)


def unit_name(table: pd.DataFrame, dataset: str) -> str:
    rows = table[table["dataset"] == dataset]
    return "folds" if (rows["subject"] == "__fold__").all() else "subjects"


def per_subject(table: pd.DataFrame) -> pd.DataFrame:
    """Scores per (dataset, pipeline, protocol, subject or fold), averaged over seeds."""
    rows = scoring_units(table)
    return (rows.groupby(["dataset", "pipeline", "protocol", "subject", "metric"])["value"]
            .mean().reset_index())


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """mean, sd and n across subjects or folds (and seeds) per dataset x pipeline x protocol x
    metric."""
    rows = scoring_units(table)
    g = rows.groupby(["dataset", "pipeline", "protocol", "metric"])["value"]
    return g.agg(mean="mean", sd="std", n="count").reset_index()


def markdown(table: pd.DataFrame, cells: pd.DataFrame | None = None) -> str:
    """One Markdown table per dataset: pipelines x metrics as mean +- sd across subjects;
    with ``cells`` (:meth:`ResultsStore.cells`), the median seconds a fold took."""
    if table.empty:
        return "(no results)"
    summ = summary(table)
    seconds = ({} if cells is None or "seconds" not in cells else
               cells.groupby(["dataset", "pipeline"])["seconds"].median().to_dict())
    out = []
    for (dataset, protocol), part in summ.groupby(["dataset", "protocol"]):
        metrics = [m for m in MAIN_METRICS if m in set(part["metric"])]
        unit = unit_name(table, dataset)
        out += [f"### {dataset} ({protocol})", "",
                "| pipeline | " + " | ".join(metrics) + f" | {unit} x seeds | s / fold |",
                "|---|" + "---|" * (len(metrics) + 2)]
        for pipeline, rows in part.groupby("pipeline"):
            entries = []
            for m in metrics:
                r = rows[rows["metric"] == m]
                entries.append("-" if r.empty or np.isnan(r["mean"].iloc[0]) else
                             f"{r['mean'].iloc[0]:.3f} +- {np.nan_to_num(r['sd'].iloc[0]):.3f}")
            n = int(rows["n"].max())
            sec = seconds.get((dataset, pipeline))
            timing = "-" if sec is None or np.isnan(sec) else f"{sec:.1f}"
            out.append(f"| {pipeline} | " + " | ".join(entries) + f" | {n} | {timing} |")
        out.append("")
        out += wilcoxon_lines(table, dataset, protocol)
    return "\n".join(out)


def wilcoxon_lines(table, dataset, protocol, metric="balanced_accuracy") -> list[str]:
    """Paired Wilcoxon signed-rank tests across subjects (or folds) between every two
    pipelines, as a matrix: the cell of row a, column b holds p and the median of a - b."""
    subj = per_subject(table)
    part = subj[(subj["dataset"] == dataset) & (subj["protocol"] == protocol)
                & (subj["metric"] == metric)]
    pipes = sorted(part["pipeline"].unique())
    if len(pipes) < 2:
        return []
    unit = unit_name(table, dataset)
    lines = [f"Paired Wilcoxon signed-rank tests on {metric} across {unit} (p; median "
             "difference row - column; '-' where no test can run):", "",
             "| | " + " | ".join(pipes[1:]) + " |", "|---|" + "---|" * (len(pipes) - 1)]
    for i, a in enumerate(pipes[:-1]):
        cells = []
        for j, b in enumerate(pipes[1:], start=1):
            if j <= i:
                cells.append("")
                continue
            sa = part[part["pipeline"] == a].set_index("subject")["value"]
            sb = part[part["pipeline"] == b].set_index("subject")["value"]
            common = sa.index.intersection(sb.index)
            res = paired_wilcoxon(sa.loc[common], sb.loc[common])
            cells.append(f"{res['p_value']:.2g} ({res['median_difference']:+.3f}, n={res['n']})"
                         if np.isfinite(res["p_value"]) else "-")
        lines.append(f"| {a} | " + " | ".join(cells) + " |")
    return lines + [""]


def plots(table: pd.DataFrame, out_dir: Path, metric: str = "balanced_accuracy") -> list[Path]:
    """Per dataset: a box plot per pipeline and the per-subject scores, as PNG files."""
    import logging

    import matplotlib

    matplotlib.use("Agg")
    logging.getLogger("matplotlib.category").setLevel(logging.WARNING)  # subject ids as text
    import matplotlib.pyplot as plt

    subj = per_subject(table)
    subj = subj[subj["metric"] == metric]
    paths = []
    for (dataset, protocol), part in subj.groupby(["dataset", "protocol"]):
        pipes = sorted(part["pipeline"].unique())
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
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
        plt.close(fig)
        paths.append(path)
    return paths

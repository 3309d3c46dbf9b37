"""Tables and plots from the tidy results: mean +- sd across subjects (or folds, where a
dataset has no subject ids) and seeds, paired tests."""
from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

from .metrics import aggregate, paired_wilcoxon

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


def summary(table: pd.DataFrame) -> dict[tuple[str, str], pd.DataFrame]:
    """Per (dataset, protocol): one row per pipeline with ``<metric>_mean``, ``<metric>_sd``
    across subjects or folds (and seeds) and ``n``, by :func:`metrics.aggregate`; the metrics
    are those the dataset's cells report."""
    units = scoring_units(table)
    out = {}
    for (dataset, protocol), part in units.groupby(["dataset", "protocol"]):
        unit = ["pipeline", "fold", "subject", "seed"]
        # a table merged from several runs may score one unit twice: both rows count
        part = part.assign(repeat=part.groupby(unit + ["metric"]).cumcount())
        wide = part.pivot(index=unit + ["repeat"], columns="metric",
                          values="value").reset_index()
        metrics = [m for m in MAIN_METRICS if m in wide.columns]
        out[dataset, protocol] = aggregate(wide, by=["pipeline"], metric_cols=metrics)
    return out


def markdown(table: pd.DataFrame, cells: pd.DataFrame | None = None) -> str:
    """One Markdown table per dataset: pipelines x metrics as mean +- sd across subjects;
    with ``cells`` (:meth:`ResultsStore.frames`), the median seconds a fold took."""
    if table.empty:
        return "(no results)"
    seconds = ({} if cells is None or "seconds" not in cells else
               cells.groupby(["dataset", "pipeline"])["seconds"].median().to_dict())
    out = []
    for (dataset, protocol), part in summary(table).items():
        metrics = [m for m in MAIN_METRICS if f"{m}_mean" in part.columns]
        unit = unit_name(table, dataset)
        out += [f"### {dataset} ({protocol})", "",
                "| pipeline | " + " | ".join(metrics) + f" | {unit} x seeds | s / fold |",
                "|---|" + "---|" * (len(metrics) + 2)]
        for row in part.itertuples(index=False):
            row = row._asdict()
            entries = ["-" if np.isnan(row[f"{m}_mean"]) else
                       f"{row[f'{m}_mean']:.3f} +- {np.nan_to_num(row[f'{m}_sd']):.3f}"
                       for m in metrics]
            sec = seconds.get((dataset, row["pipeline"]))
            timing = "-" if sec is None or np.isnan(sec) else f"{sec:.1f}"
            out.append(f"| {row['pipeline']} | " + " | ".join(entries)
                       + f" | {int(row['n'])} | {timing} |")
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

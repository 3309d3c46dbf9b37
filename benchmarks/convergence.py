"""Did each network's budget converge? Validation curves of every fold of a benchmark run.

Every fine-tuned cell records the validation score of each epoch (``val_curve``: AUROC for
binary tasks, loss for multi-class) and the epoch chosen on it. This script reads a run's
cells, never a test score, and for each dataset x pipeline reports:

- the median selected epoch and the share of folds whose selected epoch falls in the last
  fifth of the budget (a curve still improving at the end: the budget may be too short);
- the median over folds of the gain in the last quarter of epochs, as a share of the gain
  over the whole curve (near 0: flat at the end; near 1: most of the progress came late);

and plots the median curve with its inter-quartile band per pipeline and dataset.

    python benchmarks/convergence.py results/bench_cpu --out docs/figures/convergence_bench_cpu.png
"""
from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np


def read_curves(results_dir: Path) -> dict[tuple[str, str], dict]:
    """(dataset, pipeline) -> {"curves": [...], "selected": [...], "on": metric name}, from
    the cells' reported info (ResultsStore.frames: each cell file read once; a corrupt one
    is set aside with a warning, as the benchmark does)."""
    from brainfm.bench.results import ResultsStore

    if not (results_dir / "cells").is_dir():
        raise SystemExit(f"{results_dir}: no cells/ folder; pass a benchmark's results_dir")
    out: dict[tuple[str, str], dict] = defaultdict(lambda: {"curves": [], "selected": []})
    for cell in ResultsStore(results_dir).frames()[1].to_dict("records"):
        curve = cell.get("val_curve")
        if not isinstance(curve, list) or not curve:
            continue
        entry = out[(cell["dataset"], cell["pipeline"])]
        entry["curves"].append(np.asarray(curve, dtype=float))
        entry["selected"].append(int(cell["selected_epoch"]))
        entry["on"] = cell["selected_on"]
    return dict(out)


def late_gain_share(curve: np.ndarray, higher_is_better: bool) -> float:
    """Share of the curve's total improvement (best so far) made in its last quarter."""
    best = np.maximum.accumulate(curve) if higher_is_better else np.minimum.accumulate(curve)
    total = abs(best[-1] - best[0])
    if total == 0:
        return 0.0
    cut = max(int(np.ceil(len(curve) * 0.75)) - 1, 0)
    return float(abs(best[-1] - best[cut]) / total)


def summarise(curves: dict) -> list[dict]:
    rows = []
    for (dataset, pipeline), entry in sorted(curves.items()):
        n_epochs = max(len(c) for c in entry["curves"])
        higher = "loss" not in entry["on"]
        selected = np.asarray(entry["selected"])
        rows.append({
            "dataset": dataset, "pipeline": pipeline, "selected_on": entry["on"],
            "folds": len(selected), "epochs": n_epochs,
            "median_selected_epoch": float(np.median(selected)),
            "share_selected_in_last_fifth": float(np.mean(selected > 0.8 * n_epochs)),
            "median_late_gain_share": float(np.median(
                [late_gain_share(c, higher) for c in entry["curves"]])),
        })
    return rows


def plot(curves: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = sorted({d for d, _ in curves})
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.2 * len(datasets), 3.4),
                             squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        for (d, pipeline), entry in sorted(curves.items()):
            if d != dataset:
                continue
            n = min(len(c) for c in entry["curves"])
            stack = np.stack([c[:n] for c in entry["curves"]])
            epochs = np.arange(1, n + 1)
            q1, med, q3 = np.percentile(stack, [25, 50, 75], axis=0)
            line, = ax.plot(epochs, med, label=pipeline)
            ax.fill_between(epochs, q1, q3, color=line.get_color(), alpha=0.15)
            ax.set_ylabel(f"validation {entry['on'].split('/')[-1]}")
        ax.set_title(dataset)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=6)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results_dir", type=Path, help="a benchmark's results folder")
    parser.add_argument("--out", type=Path, required=True, help="the plot (png)")
    args = parser.parse_args(argv)
    curves = read_curves(args.results_dir)
    if not curves:
        raise SystemExit(f"no cell with a validation curve under {args.results_dir}/cells")
    rows = summarise(curves)
    print("| dataset | pipeline | selected on | folds | epochs | median selected epoch "
          "| selected in last fifth | late gain share (median) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['dataset']} | {r['pipeline']} | {r['selected_on']} | {r['folds']} | "
              f"{r['epochs']} | {r['median_selected_epoch']:g} | "
              f"{r['share_selected_in_last_fifth']:.2f} | {r['median_late_gain_share']:.2f} |")
    plot(curves, args.out)
    args.out.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    print(f"plot: {args.out}")


if __name__ == "__main__":
    main()

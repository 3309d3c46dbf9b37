"""Classical baselines through the benchmark runner: balanced accuracy across subjects,
corrected tests, per-subject plot.

    python benchmarks/classical_baselines.py --store-root stores --out runs/ssvep_baselines
    python benchmarks/classical_baselines.py --store-root stores --dataset eegmmidb_baseline \
        --protocol group_kfold --folds 3 --baselines csp_lda fbcsp_lda fb_ts_lr \
        --out runs/eegmmidb_baselines

Prepare the store first (``brainfm-prep dataset=...``). Each fold fits a fresh baseline on
the training subjects' windows (no validation set: nothing is selected) and scores the
held-out subjects. Writes the runner's results.csv, summary.md (mean +- sd across
subjects, Holm-corrected pairwise tests, effects) and the per-subject plot to ``--out``,
and prints the summary and each baseline's per-subject scores.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from brainfm.bench.runner import run_benchmark


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store-root", type=Path, default=Path("stores"))
    ap.add_argument("--dataset", default="ssvep_exoskeleton")
    ap.add_argument("--out", type=Path, default=Path("runs/ssvep_baselines"))
    ap.add_argument("--protocol", default="loso", choices=["loso", "group_kfold"])
    ap.add_argument("--n-splits", type=int, default=10, help="group_kfold's folds")
    ap.add_argument("--folds", type=int, default=None, help="the first N folds only")
    ap.add_argument("--baselines", nargs="+", default=["cca", "fbcca", "psd_lr", "fb_ts_lr",
                                                        "ts_lr"])
    args = ap.parse_args()
    experiment = {"datasets": [args.dataset], "seeds": [0], "max_folds": args.folds,
                  "protocols": {"default": (
                      {"name": "loso", "val_subjects": 0} if args.protocol == "loso" else
                      {"name": "group_kfold", "n_splits": args.n_splits, "val_fraction": 0})},
                  "pipelines": {name: {"kind": "classical", "baseline": name}
                                for name in args.baselines}}
    t0 = time.perf_counter()
    result = run_benchmark(experiment, args.store_root, args.out, progress=False)
    print(result["summary"])
    table = pd.read_csv(args.out / "results.csv", dtype={"subject": str})
    ba = table[(table["metric"] == "balanced_accuracy") & (table["subject"] != "__fold__")]
    for name, part in ba.groupby("pipeline"):
        print(f"{name}: " + " ".join(f"{v:.2f}" for v in part.sort_values("subject")["value"]))
    print(f"{result['computed']} cells computed, {result['skipped']} already done, "
          f"{time.perf_counter() - t0:.0f} s; figures: {', '.join(result['figures'])}")


if __name__ == "__main__":
    main()

"""Does fine-tuning a pretrained criss-cross beat the same architecture trained from scratch at
the same budget? (issue 18, section 3), over several pretraining runs.

For each dataset ``d`` and pretraining run ``s`` (``runs/repr/<arm>/without_<d>_seed<s>``,
made by benchmarks/representations.py's arm, i.e. never pretrained on ``d``), one
``brainfm-bench`` job runs two pipelines on the same folds with seed ``s``:
``criss_cross_finetune`` (that run's weights) and ``criss_cross_scratch`` (the same
architecture, random weights, the same recipe and epochs: ``experiment=finetune_vs_scratch_cpu``).
The job's results.csv holds one row per test subject. eegmmidb_baseline runs its first 3 of
10 subject-grouped folds by default (``--max-folds``; CPU time), about a third of its subjects.

The comparison is per dataset on every subject (nothing is chosen here: the recipe and the
budget are the experiment's, the epoch is chosen on each fold's validation subjects): the
mean per-subject difference with a crossed bootstrap over subjects and runs
(:func:`brainfm.bench.stats.crossed_bootstrap`), Cohen's d_z, Holm over the datasets.

    python benchmarks/finetune_vs_scratch.py                 # run the jobs, then compare
    python benchmarks/finetune_vs_scratch.py --from-scores   # compare the committed rows
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
PIPELINES = ("criss_cross_finetune", "criss_cross_scratch")
METRIC = "balanced_accuracy"


def bench_command(dataset: str, seed: int, arm: str, runs: Path, out: Path,
                  max_folds: int | None = None) -> list[str]:
    from brainfm.run_folder import run_checkpoint

    checkpoint = run_checkpoint(runs / arm / f"without_{dataset}_seed{seed}")
    return [str(Path(sys.executable).parent / "brainfm-bench"),
            "experiment=finetune_vs_scratch_cpu", f"datasets=[{dataset}]", f"seeds=[{seed}]",
            *([f"max_folds={max_folds}"] if max_folds else []),
            f"pretrained.path={checkpoint}", "progress=false",
            f"hydra.run.dir={out}", f"results_dir={out}/cells",
            # every other pipeline of the experiment is left out
            "~pipelines.eegnet", "~pipelines.shallow", "~pipelines.criss_cross_finetune_flatten",
            "~pipelines.fbcsp_lda", "~pipelines.csp_lda", "~pipelines.fb_ts_lr",
            "~pipelines.bandpower_lr", "~pipelines.bandpower_lr_subject_norm",
            "~pipelines.criss_cross_probe", "~pipelines.criss_cross_probe_subject_norm",
            "~pipelines.criss_cross_probe_random", "~pipelines.cca", "~pipelines.fbcca",
            "~pipelines.psd_lr", "~pipelines.xdawn_lr", "~pipelines.ts_lr"]


def collect(dataset: str, seed: int, job: Path) -> pd.DataFrame:
    from brainfm.bench.cell_schema import FOLD_ROW

    table = pd.read_csv(job / "results.csv", dtype={"subject": str})
    rows = table[table["pipeline"].isin(PIPELINES) & (table["metric"] == METRIC)
                 & (table["subject"] != FOLD_ROW)]      # the pooled per-fold rows left out
    if set(rows["pipeline"]) != set(PIPELINES):
        raise SystemExit(f"{job / 'results.csv'} lacks one of {PIPELINES}: rerun that job")
    return pd.DataFrame({"dataset": dataset, "run": seed, "pipeline": rows["pipeline"],
                         "subject": rows["subject"], METRIC: rows["value"]})


def compare(scores: pd.DataFrame) -> pd.DataFrame:
    from brainfm.bench.stats import cohens_dz, crossed_bootstrap, holm

    out = []
    for dataset, sub in scores.groupby("dataset", sort=False):
        def matrix(pipeline):
            return sub[sub["pipeline"] == pipeline].pivot_table(
                index="subject", columns="run", values=METRIC)
        a, b = matrix(PIPELINES[0]), matrix(PIPELINES[1])
        common = a.index.intersection(b.index)
        A, B = a.loc[common].to_numpy(), b.loc[common].to_numpy()
        est, lo, hi, p = crossed_bootstrap(A, B, seed=0)
        out.append({"dataset": dataset, "finetune": float(np.nanmean(A)),
                    "scratch": float(np.nanmean(B)), "diff": est, "ci_low": lo, "ci_high": hi,
                    "p": p, "dz": cohens_dz(np.nanmean(A, axis=1) - np.nanmean(B, axis=1)),
                    "n_subjects": len(common), "n_runs": A.shape[1]})
    for row, p in zip(out, holm([r["p"] for r in out])):
        row["p_holm"] = float(p)
    return pd.DataFrame(out)


def markdown(comparisons: pd.DataFrame) -> str:
    lines = ["| dataset | fine-tuned | from scratch | difference [95% CI] | d_z | subjects | "
             "runs a side | p | p (Holm) |", "|---|---|---|---|---|---|---|---|---|"]
    for r in comparisons.to_dict("records"):
        lines.append(f"| {r['dataset']} | {r['finetune']:.3f} | {r['scratch']:.3f} | "
                     f"{r['diff']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}] | "
                     f"{r['dz']:.2f} | {r['n_subjects']} | {r['n_runs']} | {r['p']:.3g} | "
                     f"{r['p_holm']:.3g} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", default="eegmat,eegmmidb_baseline")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--arm", default="band_power",
                    help="representations.py's arm whose pretraining runs are fine-tuned")
    ap.add_argument("--runs", default="runs/repr")
    ap.add_argument("--jobs", default="runs/finetune_vs_scratch")
    ap.add_argument("--out", default="benchmarks/results/finetune_vs_scratch")
    ap.add_argument("--max-folds", default="eegmmidb_baseline=3",
                    help="dataset=N: only the first N folds of that dataset (CPU time: a "
                         "fold of eegmmidb_baseline is about 2.5 min per pipeline here)")
    ap.add_argument("--from-scores", action="store_true")
    args = ap.parse_args()
    max_folds = {k: int(v) for k, v in (kv.split("=") for kv in args.max_folds.split(",") if kv)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not args.from_scores:
        parts = []
        for dataset in args.datasets.split(","):
            for seed in (int(s) for s in args.seeds.split(",")):
                job = Path(args.jobs) / args.arm / f"{dataset}_seed{seed}"
                if not (job / "results.csv").is_file():
                    cmd = bench_command(dataset, seed, args.arm, Path(args.runs), job,
                                        max_folds.get(dataset))
                    print(" ".join(cmd), flush=True)
                    subprocess.run(cmd, check=True, cwd=ROOT,
                                   env={**os.environ, "OMP_NUM_THREADS": "1"})
                parts.append(collect(dataset, seed, job))
        pd.concat(parts).to_csv(out / "scores.csv", index=False)
    scores = pd.read_csv(out / "scores.csv", dtype={"subject": str})
    comparisons = compare(scores)
    comparisons.to_csv(out / "comparisons.csv", index=False)
    (out / "summary.md").write_text(markdown(comparisons) + "\n")
    print(markdown(comparisons))


if __name__ == "__main__":
    main()

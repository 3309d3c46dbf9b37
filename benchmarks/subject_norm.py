"""Per-subject normalisation: classical baselines with and without it, LOSO, per subject.

    python benchmarks/subject_norm.py --store-root stores --baselines bandpower_lr alpha_lr
    python benchmarks/subject_norm.py --store-root stores --datasets eegmat \
        --baselines csp_lda --out benchmarks/results/subject_norm/eegmat_csp_lda

Each baseline runs twice through the benchmark runner on the same leave-one-subject-out
folds (no validation set: nothing is selected): as it is, and with ``subject_norm: true``
(features z-scored within each subject, the test subject's from its own unlabelled
windows; :mod:`brainfm.bench.subject_norm`). ``alpha_lr`` is band power in the alpha band
(8-13 Hz) only, ``bandpower_lr`` the five clinical bands. Writes to ``--out``:

- ``per_subject.csv``: one row per dataset, baseline, with/without, subject and metric;
- ``summary.csv``: per dataset, baseline and metric, the mean over subjects without and
  with normalisation (``without_norm``, ``with_norm``), the paired difference (with -
  without) with a 95 % bootstrap CI over subjects, the Wilcoxon signed-rank p-value and
  how many subjects improved / worsened;
- ``summary.md``: the same as a table (docs/benchmarks.md renders it from summary.csv).

The runner's cells go to ``--work`` (resumable); prepare the stores first
(``brainfm-prep dataset=eegmmidb_baseline``, ``dataset=eegmat``).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from brainfm.bench.metrics import paired_wilcoxon
from brainfm.bench.stats import hierarchical_bootstrap

SUFFIX = "_subject_norm"
#: baseline name in the tables -> the runner's pipeline spec (without subject_norm)
BASELINES = {"bandpower_lr": {"kind": "classical", "baseline": "bandpower_lr"},
             "alpha_lr": {"kind": "classical", "baseline": "bandpower_lr",
                          "bands": {"alpha": [8.0, 13.0]}},
             "csp_lda": {"kind": "classical", "baseline": "csp_lda"},
             "fbcsp_lda": {"kind": "classical", "baseline": "fbcsp_lda"},
             "fb_ts_lr": {"kind": "classical", "baseline": "fb_ts_lr"}}
METRICS = ("balanced_accuracy", "auroc")


def experiment(datasets, baselines, folds) -> dict:
    pipelines = {}
    for name in baselines:
        pipelines[name] = dict(BASELINES[name])
        pipelines[name + SUFFIX] = {**BASELINES[name], "subject_norm": True}
    return {"datasets": list(datasets), "seeds": [0], "max_folds": folds,
            "protocols": {"default": {"name": "loso", "val_subjects": 0}},
            "pipelines": pipelines}


def per_subject(results: pd.DataFrame) -> pd.DataFrame:
    """The runner's tidy rows of held-out subjects, with baseline and with/without split."""
    rows = results[(results["subject"] != "__fold__") & results["metric"].isin(METRICS)].copy()
    rows["subject_norm"] = rows["pipeline"].str.endswith(SUFFIX)
    rows["baseline"] = rows["pipeline"].str.removesuffix(SUFFIX)
    return rows[["dataset", "baseline", "subject_norm", "subject", "metric", "value"]
                ].sort_values(["dataset", "baseline", "metric", "subject_norm", "subject"])


def summarise(rows: pd.DataFrame) -> pd.DataFrame:
    out = []
    for (dataset, baseline, metric), part in rows.groupby(["dataset", "baseline", "metric"]):
        wide = part.pivot(index="subject", columns="subject_norm", values="value")
        without, with_ = wide[False], wide[True]
        diff, low, high = hierarchical_bootstrap(with_.to_numpy()[:, None],
                                                 without.to_numpy()[:, None])
        d = with_ - without
        out.append({"dataset": dataset, "baseline": baseline, "metric": metric,
                    "n_subjects": len(wide), "without_norm": without.mean(),
                    "with_norm": with_.mean(),
                    "difference": diff, "ci_low": low, "ci_high": high,
                    "wilcoxon_p": paired_wilcoxon(with_, without)["p_value"],
                    "improved": int((d > 0).sum()), "worsened": int((d < 0).sum())})
    return pd.DataFrame(out)


def markdown(summary: pd.DataFrame) -> str:
    """The summary as a table (docs/benchmarks.md renders it from summary.csv)."""
    lines = ["| dataset | baseline | metric | subjects | without | with | with - without "
             "[95 % CI] | Wilcoxon p | better / worse |", "|" + "---|" * 9]
    for r in summary.itertuples():
        lines.append(f"| {r.dataset} | {r.baseline} | {r.metric} | {r.n_subjects} | "
                     f"{r.without_norm:.3f} | {r.with_norm:.3f} | {r.difference:+.3f} "
                     f"[{r.ci_low:+.3f}, {r.ci_high:+.3f}] | {r.wilcoxon_p:.2g} | "
                     f"{r.improved} / {r.worsened} |")
    return "\n".join(lines)


def main() -> None:
    from brainfm.bench.runner import run_benchmark

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store-root", type=Path, default=Path("stores"))
    ap.add_argument("--datasets", nargs="+", default=["eegmmidb_baseline", "eegmat"])
    ap.add_argument("--baselines", nargs="+", default=list(BASELINES), choices=list(BASELINES))
    ap.add_argument("--folds", type=int, default=None, help="the first N folds only")
    ap.add_argument("--work", type=Path, default=Path("runs/subject_norm"),
                    help="the runner's cells and report (resumable)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/subject_norm"))
    args = ap.parse_args()
    t0 = time.perf_counter()
    result = run_benchmark(experiment(args.datasets, args.baselines, args.folds),
                           args.store_root, args.work, progress=True)
    rows = per_subject(pd.read_csv(Path(result["report_dir"]) / "results.csv",
                                   dtype={"subject": str}))
    summary = summarise(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    rows.to_csv(args.out / "per_subject.csv", index=False, float_format="%.6g")
    summary.to_csv(args.out / "summary.csv", index=False, float_format="%.6g")
    text = markdown(pd.read_csv(args.out / "summary.csv"))  # as docs_blocks.py renders it
    (args.out / "summary.md").write_text(text + "\n")
    print(text)
    print(f"{result['computed']} cells computed, {result['skipped']} already done, "
          f"{time.perf_counter() - t0:.0f} s; results in {args.out}")


if __name__ == "__main__":
    main()

"""Does masked-patch pretraining transfer? Linear probes of pretrained vs random backbones.

For each evaluated dataset ``d`` (eegmat, ssvep_exoskeleton, eegmmidb_baseline):

1. leave-dataset-out pretraining: ``brainfm-pretrain`` on the corpus without ``d``, once per
   pretraining seed (the same recipe, steps and corpus as ``--experiment``);
2. the same architecture at random initialisation, once per initialisation seed;
3. optionally an in-domain control (``--in-domain-folds K``): per grouped fold, pretraining
   on the continuous recordings of ``d``'s training subjects only (never the fold's test
   subjects), probed on that fold's test subjects;
4. frozen pooled features of ``d``'s task windows, then a leave-one-subject-out linear probe
   (scaler + balanced logistic regression fitted on the training subjects only), scored by
   balanced accuracy per test subject; with ``--budgets 1,2,4,8`` also with only that many
   training subjects (``--draws`` random draws each).

Statistics (``brainfm.bench.stats``): per dataset and budget, the per-subject difference
pretrained - random (each side averaged over its seeds), its hierarchical-bootstrap 95% CI
(subjects, then seeds), a paired Wilcoxon test, Cohen's d_z and the rank-biserial
correlation; p-values are Holm-corrected over the whole family of comparisons. Results go to
``--out`` (JSON) and a Markdown summary (``--markdown``), plus a label-efficiency plot.

    python benchmarks/pretrain_transfer.py --steps 1500 --seeds 0,1,2 --budgets 1,2,4,8
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


# ---- pretraining runs -----------------------------------------------------------------------
def pretrain(run_dir: Path, experiment: str, datasets: list[str], seed: int, steps: int,
             extra: list[str], threads: int) -> Path:
    """A brainfm-pretrain run (cached: skipped when its checkpoint exists; a run made before
    checkpoint folders: its model.pt)."""
    from brainfm.run_folder import run_checkpoint

    model = run_checkpoint(run_dir)
    if model.exists():
        return model
    cmd = [str(Path(sys.executable).with_name("brainfm-pretrain")), f"experiment={experiment}",
           f"data.datasets=[{','.join(datasets)}]", f"seed={seed}",
           f"trainer.max_steps={steps}", f"trainer.val_check_interval={steps}",
           "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
           f"hydra.run.dir={run_dir}", *extra]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    if proc.returncode:
        raise RuntimeError(f"pretraining {run_dir} failed:\n{proc.stderr[-3000:]}")
    (run_dir / "wall_seconds.txt").write_text(f"{time.perf_counter() - t0:.1f}\n")
    return run_checkpoint(run_dir)


# ---- features and probes --------------------------------------------------------------------
def task_windows(dataset: str, store_root: Path):
    from brainfm.data.loading import WindowDataset
    from brainfm.pretrain_run import ensure_stores

    store = ensure_stores([dataset], store_root, None)[0]
    windows = WindowDataset([store])
    keep = np.flatnonzero(windows.table["label"].to_numpy() >= 0)
    return windows.subset(keep)


def backbone(model_file: Path | None, config: dict | None, init_seed: int | None):
    """A frozen backbone: pretrained weights, or the same architecture freshly initialised."""
    import torch

    from brainfm.checkpoint import from_pretrained
    from brainfm.models.criss_cross import CrissCrossTransformer

    if model_file is not None:
        return from_pretrained(model_file)
    torch.manual_seed(init_seed)
    return CrissCrossTransformer(**config)


def features(model, windows) -> np.ndarray:
    import torch

    from brainfm.bench.probe import extract_features

    torch.set_num_threads(1)
    return extract_features(model, windows)


def probe_scores(feats: np.ndarray, labels: np.ndarray, subjects: np.ndarray,
                 test_subjects, budget: int | None, draws: int, seed: int) -> dict:
    """Balanced accuracy per test subject: LR trained on the other subjects (all of them, or
    ``budget`` drawn at random, averaged over ``draws`` draws)."""
    from sklearn.metrics import balanced_accuracy_score

    from brainfm.bench.probe import linear_probe

    out = {}
    everyone = np.unique(subjects)
    for test in test_subjects:
        rest = everyone[everyone != test]
        scores = []
        n_draws = 1 if budget is None or budget >= len(rest) else draws
        for d in range(n_draws):
            rng = np.random.default_rng([seed, d, hash(str(test)) % (2 ** 31)])
            train_subj = rest if n_draws == 1 else rng.choice(rest, budget, replace=False)
            tr = np.isin(subjects, train_subj)
            te = subjects == test
            if len(np.unique(labels[tr])) < 2:
                continue
            clf = linear_probe(seed).fit(feats[tr], labels[tr])
            scores.append(balanced_accuracy_score(labels[te], clf.predict(feats[te])))
        out[str(test)] = float(np.mean(scores)) if scores else float("nan")
    return out


# ---- statistics -----------------------------------------------------------------------------
def compare(pre: dict[int, dict], rnd: dict[int, dict]) -> dict:
    """Per-subject difference pretrained - random, with seeds averaged on each side."""
    from brainfm.bench.metrics import paired_wilcoxon
    from brainfm.bench.stats import cohens_dz, hierarchical_bootstrap, rank_biserial

    subjects = sorted(next(iter(pre.values())))
    a = np.array([[pre[s][u] for s in sorted(pre)] for u in subjects])
    b = np.array([[rnd[s][u] for s in sorted(rnd)] for u in subjects])
    est, lo, hi = hierarchical_bootstrap(a, b, n_boot=2000, seed=0)
    diff = np.nanmean(a, axis=1) - np.nanmean(b, axis=1)
    p = paired_wilcoxon(np.nanmean(a, axis=1), np.nanmean(b, axis=1))["p_value"]
    return {"pretrained": float(np.nanmean(a)), "random": float(np.nanmean(b)),
            "pretrained_sd_subjects": float(np.nanstd(np.nanmean(a, axis=1), ddof=1)),
            "random_sd_subjects": float(np.nanstd(np.nanmean(b, axis=1), ddof=1)),
            "seed_sd_pretrained": float(np.nanmean(np.nanstd(a, axis=1))),
            "diff": est, "ci_low": lo, "ci_high": hi, "p": p,
            "dz": cohens_dz(diff), "rank_biserial": rank_biserial(diff),
            "n_subjects": len(subjects), "n_pretrained": a.shape[1], "n_random": b.shape[1]}


def markdown(rows: list[dict]) -> str:
    """One row per comparison; 'runs' is pretraining runs / random initialisations, the
    units whose spread the subject bootstrap does not cover."""
    lines = ["| dataset | training subjects | control | runs (pretrained / control) | pretrained | "
             "control score | difference [95% CI] | d_z | p | p (Holm) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['dataset']} | {r['budget']} | {r['control']} | "
            f"{r['n_pretrained']} / {r['n_random']} | {r['pretrained']:.3f} | "
            f"{r['random']:.3f} | {r['diff']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}] | "
            f"{r['dz']:.2f} | {r['p']:.3g} | {r.get('p_holm', float('nan')):.3g} |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = sorted({r["dataset"] for r in rows})
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.2 * len(datasets), 3.4), squeeze=False)
    for ax, d in zip(axes[0], datasets):
        sub = [r for r in rows if r["dataset"] == d and r["control"] == "random init"]
        order = sorted(sub, key=lambda r: r["budget_n"])
        x = [r["budget_n"] for r in order]
        for key, label in (("pretrained", "pretrained (leave-dataset-out)"),
                           ("random", "random init")):
            ax.plot(x, [r[key] for r in order], marker="o", label=label)
        ax.fill_between(x, [r["random"] + r["ci_low"] for r in order],
                        [r["random"] + r["ci_high"] for r in order], alpha=0.2,
                        label="pretrained 95% CI (paired)")
        ax.set_xscale("log", base=2)
        ax.set_title(d)
        ax.set_xlabel("training subjects")
        ax.set_ylabel("balanced accuracy (LOSO, linear probe)")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# ---- main -----------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default="eegmat,ssvep_exoskeleton,eegmmidb_baseline")
    ap.add_argument("--corpus",
                    default="eegmat,ssvep_exoskeleton,muse_p300,bonn,delhi,eegmmidb_baseline")
    ap.add_argument("--experiment", default="pretrain_all")
    ap.add_argument("--overrides", default="", help="extra brainfm-pretrain overrides, ','")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--seeds-for", default="",
                    help="per-dataset pretraining seeds where fewer fit: 'ssvep_exoskeleton=0;...'")
    ap.add_argument("--budgets", default="1,2,4,8", help="training subjects; 'all' always")
    ap.add_argument("--draws", type=int, default=5)
    ap.add_argument("--in-domain-folds", type=int, default=0)
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--store-root", default="stores")
    ap.add_argument("--runs", default="runs/transfer")
    ap.add_argument("--out", default="benchmarks/results/pretrain_transfer.json")
    ap.add_argument("--markdown", default="benchmarks/results/pretrain_transfer.md")
    ap.add_argument("--plot", default="docs/figures/pretrain_label_efficiency.png")
    args = ap.parse_args()

    from brainfm.bench.stats import holm
    from brainfm.checkpoint import read_model_config

    datasets = args.datasets.split(",")
    corpus = args.corpus.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    seeds_for = {d: seeds for d in args.datasets.split(",")}
    for item in filter(None, args.seeds_for.split(";")):
        name, _, values = item.partition("=")
        seeds_for[name] = [int(v) for v in values.split(",")]
    extra = [o for o in args.overrides.split(",") if o]
    runs, store_root = Path(args.runs), Path(args.store_root)
    budgets = [None] + [int(b) for b in args.budgets.split(",") if b and b != "all"]

    # 1 (and 3): every pretraining run, side by side
    jobs = {}
    for d in datasets:
        for s in seeds_for[d]:
            jobs[(d, "lso", s)] = (runs / f"without_{d}_seed{s}", [c for c in corpus if c != d],
                                   s, [f"store_root={store_root}", *extra])
    folds = {}
    if args.in_domain_folds:
        from sklearn.model_selection import GroupKFold
        for d in datasets:
            subj = task_windows(d, store_root).table["subject"].astype(str).to_numpy()
            uniq = np.unique(subj)
            folds[d] = [uniq[te] for _, te in GroupKFold(args.in_domain_folds).split(
                uniq, groups=uniq)]
            for k, test in enumerate(folds[d]):
                excl = "[" + ",".join(f"{d}/{u}" for u in test) + "]"
                jobs[(d, "in_domain", k)] = (runs / f"in_domain_{d}_fold{k}", [d], 0,
                                             [f"store_root={store_root}",
                                              f"data.exclude_groups={excl}", *extra])
    with concurrent.futures.ThreadPoolExecutor(args.parallel) as pool:
        futs = {key: pool.submit(pretrain, run, args.experiment, ds, s, args.steps, ov,
                                 args.threads)
                for key, (run, ds, s, ov) in jobs.items()}
        models = {key: f.result() for key, f in futs.items()}
    print(f"{len(models)} pretraining runs ready", flush=True)

    # 2 and 4: features, probes, comparisons
    rows = []
    for d in datasets:
        windows = task_windows(d, store_root)
        labels = windows.table["label"].to_numpy()
        subjects = windows.table["subject"].astype(str).to_numpy()
        config = {**read_model_config(models[(d, "lso", seeds_for[d][0])]), "head": "none"}
        pre_feats = {s: features(backbone(models[(d, "lso", s)], None, None), windows)
                     for s in seeds_for[d]}
        rnd_feats = {s: features(backbone(None, config, 1000 + s), windows) for s in seeds}
        everyone = np.unique(subjects)
        for budget in budgets:
            pre = {s: probe_scores(pre_feats[s], labels, subjects, everyone, budget,
                                   args.draws, s) for s in seeds_for[d]}
            rnd = {s: probe_scores(rnd_feats[s], labels, subjects, everyone, budget,
                                   args.draws, s) for s in seeds}
            row = compare(pre, rnd)
            rows.append({"dataset": d, "budget": "all" if budget is None else budget,
                         "budget_n": len(everyone) - 1 if budget is None else budget,
                         "control": "random init", **row})
            print(markdown(rows[-1:]).splitlines()[-1], flush=True)
        if d in folds:  # in-domain control: the fold's own pretraining vs leave-dataset-out
            ind, lso = {}, {}
            for k, test in enumerate(folds[d]):
                f_in = features(backbone(models[(d, "in_domain", k)], None, None), windows)
                ind.update(probe_scores(f_in, labels, subjects, test, None, 1, 0))
                lso.update(probe_scores(pre_feats[seeds_for[d][0]], labels, subjects, test,
                                        None, 1, 0))
            row = compare({0: ind}, {0: lso})
            rows.append({"dataset": d, "budget": "all", "budget_n": len(everyone) - 1,
                         "control": "in-domain vs leave-dataset-out (seed 0)", **row})
            print(markdown(rows[-1:]).splitlines()[-1], flush=True)
    adjusted = holm([r["p"] for r in rows])
    for r, p in zip(rows, adjusted):
        r["p_holm"] = float(p)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))
    Path(args.markdown).write_text(markdown(rows) + "\n")
    Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
    plot(rows, Path(args.plot))
    print(markdown(rows))


if __name__ == "__main__":
    main()

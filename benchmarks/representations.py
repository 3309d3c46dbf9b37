"""Do frozen features of brainfm's pretraining objectives beat a random network? (issue 18)

For each evaluated dataset ``d`` (eegmat, ssvep_exoskeleton, eegmmidb_baseline), every arm
has leave-dataset-out pretraining runs (``runs/repr/<arm>/without_<d>_seed<s>``, made by
``brainfm-pretrain experiment=pretrain_all`` with the arm's overrides on the corpus without
``d``: see ARMS and ``--print-commands``). The script then:

1. splits ``d``'s subjects once (seeded permutation) into a **selection** third and a
   **report** two thirds. Everything chosen (which layer a probe reads, which objective wins)
   is chosen on selection subjects' scores; only report subjects' scores are tested;
2. extracts frozen pooled features of every layer (mean over real channels and patches) of
   ``d``'s task windows, for every pretraining run and for the same architecture at random
   initialisation (one per init seed); plus log band power, raw and standardised per subject
   (:func:`brainfm.bench.subject_norm.standardise_per_subject`, unlabelled windows only);
3. scores a linear probe (scaler + balanced logistic regression) by balanced accuracy per
   subject in subject-grouped folds (``--folds`` 12: leave-one-subject-out on
   ssvep_exoskeleton's 12 subjects, 3 test subjects per fold on eegmat, 9 on
   eegmmidb_baseline): trained on the other folds' subjects (selection and report alike),
   all of them or 1, 2, 4, 8 drawn at random (``--draws`` draws);
4. read-outs: ``last`` (the last layer, as brainfm-bench's probe reads it) and
   ``best_layer`` (per run, the layer with the best mean selection-subject score at the full
   budget), each also on features standardised per subject (``_subject_norm``, the same
   transductive step as the normalised band power);
5. compares, on report subjects, per dataset, arm and budget, the rows of COMPARISONS: the
   mean per-subject difference with a crossed bootstrap CI and p over subjects and runs
   (:func:`brainfm.bench.stats.crossed_bootstrap`: run-to-run variance is in every
   interval) and Cohen's d_z; Holm over every confirmatory row (selected read-outs against
   the random network and against normalised band power), and separately over the
   exploratory ones (the last layer; raw band power).

Raw per-subject scores go to ``--out``/scores.csv (one row per dataset, arm, run, read-out,
budget, subject), comparisons to comparisons.csv, and the Markdown table to summary.md.

    python benchmarks/representations.py --print-commands      # the pretraining runs
    python benchmarks/representations.py --seeds 0,1,2 --out benchmarks/results/representations
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
# a dataset's labelled task windows
from pretrain_transfer import task_windows  # noqa: E402

CORPUS = ("eegmat", "ssvep_exoskeleton", "muse_p300", "bonn", "delhi", "eegmmidb_baseline")
# every key an arm sets is spelled out (not left to pretrain_all's defaults), so the arms do
# not move when pretrain_all's default objective does
BASE = ("experiment=pretrain_all trainer.max_steps=400 trainer.val_check_interval=400 "
        "readout_layer=null")
BERNOULLI = "task.mask_kind=bernoulli task.mask_ratio=0.3"      # section 4's recipe
BLOCK = "task.mask_kind=channel_time task.mask_ratio=0.5"
#: arm -> brainfm-pretrain overrides (the corpus, seed and run folder are added per run)
ARMS = {
    "recon": f"{BASE} task.objective=reconstruction task.band_power_weight=0 {BERNOULLI}",
    "recon_block": f"{BASE} task.objective=reconstruction task.band_power_weight=0 {BLOCK}",
    "latent": f"{BASE} task.objective=latent task.band_power_weight=0 {BLOCK}",
    "band_power": f"{BASE} task.objective=band_power task.band_power_weight=0 {BLOCK}",
    "latent_band_power": f"{BASE} task.objective=latent task.band_power_weight=1.0 {BLOCK}",
    # the diffusion backbone (eegdm_tiny, DDPM v-prediction) on the same corpus and budget
    "diffusion": ("experiment=pretrain_diffusion trainer.max_steps=400 "
                  "trainer.val_check_interval=400"),
}
#: the random-initialisation control of each backbone family (same architecture, no training)
RANDOM_ARM = {"criss_cross": "random", "diffusion": "random_diffusion"}
ARM_FAMILY = {"diffusion": "diffusion"}        # every other arm is a criss-cross run
SELECTION_SHARE = 1 / 3


def run_dir(runs: Path, arm: str, dataset: str, seed: int) -> Path:
    return runs / arm / f"without_{dataset}_seed{seed}"


def pretrain_command(runs: Path, arm: str, dataset: str, seed: int) -> str:
    corpus = ",".join(c for c in CORPUS if c != dataset)
    return (f"OMP_NUM_THREADS=1 brainfm-pretrain {ARMS[arm]} 'data.datasets=[{corpus}]' "
            f"seed={seed} hydra.run.dir={run_dir(runs, arm, dataset, seed)}")


# ---- data and features ----------------------------------------------------------------------
def split_subjects(subjects: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(selection, report): a seeded third of the subjects for every choice, the rest for
    the reported scores."""
    uniq = np.unique(subjects)
    order = np.random.default_rng(seed).permutation(len(uniq))
    k = max(1, round(len(uniq) * SELECTION_SHARE))
    return np.sort(uniq[order[:k]]), np.sort(uniq[order[k:]])


def layer_features(model, windows) -> np.ndarray:
    """(n_windows, n_layers, D): each layer's features (the family adapter's per-layer
    read-out: blocks of a criss-cross transformer, latents of each diffusion block), pooled
    over real channels and patches, from one pass of the frozen backbone."""
    import torch

    from brainfm.bench.probe import extract_features
    from brainfm.models.registry import family_and_config_of
    from brainfm.bench.adapters import get_adapter

    torch.set_num_threads(1)
    adapter = get_adapter(family_and_config_of(model)[0])
    return extract_features(model, windows, lambda m, *inputs: torch.stack(
        adapter.layer_features(m, *inputs), dim=3))


def random_backbone(family: str, config: dict, seed: int):
    """The architecture ``config`` describes, freshly initialised from ``seed``."""
    import torch

    from brainfm.models.registry import build_model

    torch.manual_seed(seed)
    return build_model(family, {**config, "head": "none"} if family == "criss_cross"
                       else config)


def band_power_features(windows) -> np.ndarray:
    from brainfm.bench.baselines.classical import BandPower, arrays_from_store

    X, _ = arrays_from_store(windows)
    return BandPower(sfreq=windows.stores[0].sfreq).fit_transform(X).astype(np.float32)


# ---- probes ---------------------------------------------------------------------------------
def subject_folds(subjects: np.ndarray, n_folds: int, seed: int = 0) -> list[np.ndarray]:
    """Test subjects of each fold: every subject once, ``n_folds`` seeded groups (one subject
    per fold, i.e. leave-one-subject-out, when there are no more subjects than folds)."""
    uniq = np.unique(subjects)
    order = np.random.default_rng(seed).permutation(uniq)
    return [np.sort(part) for part in np.array_split(order, min(n_folds, len(uniq)))]


def probe_scores(feats: np.ndarray, labels: np.ndarray, subjects: np.ndarray, folds,
                 budget: int | None = None, draws: int = 1, seed: int = 0) -> dict[str, float]:
    """Balanced accuracy per subject, each scored in the fold that holds it out: the probe is
    trained on the other folds' subjects (all of them, or ``budget`` drawn at random from
    them, ``draws`` times, scores averaged)."""
    from sklearn.metrics import balanced_accuracy_score

    from brainfm.bench.probe import linear_probe

    scores: dict[str, list[float]] = {}
    everyone = np.unique(subjects)
    for k, tests in enumerate(folds):
        rest = everyone[~np.isin(everyone, tests)]
        everyone_trains = budget is None or budget >= len(rest)
        for d in range(1 if everyone_trains else draws):
            rng = np.random.default_rng([seed, d, k])
            chosen = rest if everyone_trains else rng.choice(rest, budget, replace=False)
            train = np.isin(subjects, chosen)
            if len(np.unique(labels[train])) < 2:
                continue
            clf = linear_probe(seed).fit(feats[train], labels[train])
            for test in tests:
                rows = subjects == test
                scores.setdefault(str(test), []).append(
                    balanced_accuracy_score(labels[rows], clf.predict(feats[rows])))
    return {subj: float(np.mean(v)) for subj, v in scores.items()}


def mean_over(scores: dict[str, float], group) -> float:
    return float(np.nanmean([scores[str(g)] for g in group if str(g) in scores]))


# ---- main -----------------------------------------------------------------------------------
def run_summaries(runs: Path, arms, datasets, seeds) -> list[dict]:
    """One row per pretraining run and held-out corpus dataset: what it reached on its own
    held-out subjects (reconstruction or band power against their trivial bars), the
    collapse statistics of its features, and its wall time."""
    out = []
    for arm in arms:
        for d in datasets:
            for s in seeds:
                folder = run_dir(runs, arm, d, s)
                summary = folder / "training_summary.json"
                if not summary.exists():
                    continue
                training = json.loads(summary.read_text())
                rep = training.get("representation") or {}
                wall = folder / "wall_seconds.txt"
                base = {"arm": arm, "without": d, "seed": s, "steps": training.get("steps"),
                        "wall_s": float(wall.read_text()) if wall.exists() else None,
                        "effective_rank": rep.get("effective_rank"),
                        "feature_std": rep.get("std_mean"), "collapsed": rep.get("collapsed")}
                heldout = training.get("heldout") or {"": {}}     # latent runs: no bar
                for name, row in heldout.items():
                    out.append({**base, "heldout_dataset": name,
                                "multichannel": row.get("multichannel"),
                                "model_vs_best_trivial": row.get("model_vs_best_trivial"),
                                "best_trivial": row.get("best_trivial"),
                                "band_power_vs_channel_mean":
                                    row.get("band_power_vs_channel_mean")})
    return out


def score_dataset(dataset: str, args, rows: list[dict], layers_picked: list[dict]) -> None:
    from brainfm.bench.subject_norm import standardise_per_subject
    from brainfm.checkpoint import from_pretrained
    from brainfm.models.registry import family_and_config_of
    from brainfm.run_folder import run_checkpoint

    windows = task_windows(dataset, Path(args.store_root))
    labels = windows.table["label"].to_numpy()
    subjects = windows.table["subject"].astype(str).to_numpy()
    selection, report = split_subjects(subjects, args.split_seed)
    folds = subject_folds(subjects, args.folds, args.split_seed)
    budgets = [b for b in args.budgets if b < len(np.unique(subjects)) - len(folds[0])]
    feature_sets: dict[tuple[str, int], np.ndarray] = {}   # (arm, run) -> (n, L, D)
    configs: dict[str, dict] = {}                           # family -> architecture
    for arm in args.arms:
        for s in args.seeds:
            model_file = run_checkpoint(run_dir(Path(args.runs), arm, dataset, s))
            if not model_file.exists():
                print(f"  missing {model_file}: arm {arm} seed {s} left out", flush=True)
                continue
            model = from_pretrained(model_file)
            family, config = family_and_config_of(model)
            configs.setdefault(family, config)
            feature_sets[(arm, s)] = layer_features(model, windows)
    for family, config in configs.items():
        if args.skip_controls and RANDOM_ARM[family] in args.skip_controls:
            continue
        for s in args.seeds:
            feature_sets[(RANDOM_ARM[family], s)] = layer_features(
                random_backbone(family, config, 1000 + s), windows)
    bp = band_power_features(windows)
    fixed = {"band_power": bp, "band_power_subject_norm": standardise_per_subject(bp, subjects)}
    fixed = {k: v for k, v in fixed.items() if k not in args.skip_controls}

    def record(arm, run, readout, layer, budget, scores):
        for subj, score in scores.items():
            rows.append({"dataset": dataset, "arm": arm, "run": run, "readout": readout,
                         "layer": layer, "budget": "all" if budget is None else budget,
                         "subject": subj,
                         "subset": "selection" if subj in set(selection) else "report",
                         "balanced_accuracy": score})

    for (arm, s), raw in feature_sets.items():
        normed = np.stack([standardise_per_subject(raw[:, k], subjects)
                           for k in range(raw.shape[1])], axis=1)
        for suffix, lf in (("", raw), ("_subject_norm", normed)):
            full = [probe_scores(lf[:, k], labels, subjects, folds, seed=s)
                    for k in range(lf.shape[1])]
            best = int(np.nanargmax([mean_over(f, selection) for f in full]))
            last = lf.shape[1] - 1
            layers_picked.append({"dataset": dataset, "arm": arm, "run": s,
                                  "features": "subject_norm" if suffix else "raw",
                                  "layer": best, **{f"selection_layer{k}": mean_over(f, selection)
                                                    for k, f in enumerate(full)}})
            print(f"  {dataset} {arm}{suffix} run {s}: layer {best} picked on selection "
                  f"subjects; report subjects, all training subjects: last "
                  f"{mean_over(full[last], report):.3f}, picked {mean_over(full[best], report):.3f}",
                  flush=True)
            by_budget = {}
            for layer in {last, best}:
                by_budget[layer] = {None: full[layer], **{
                    b: probe_scores(lf[:, layer], labels, subjects, folds, b, args.draws, s)
                    for b in budgets}}
            for readout, layer in (("last", last), ("best_layer", best)):
                for budget, scores in by_budget[layer].items():
                    record(arm, s, readout + suffix, layer, budget, scores)
    for name, feats in fixed.items():
        for budget in [None, *budgets]:
            record(name, 0, "features", -1, budget,
                   probe_scores(feats, labels, subjects, folds, budget, args.draws, 0))


#: (read-out of the arm, control arm, control read-out, family): the confirmatory rows are
#: the read-out chosen on selection subjects against the random network read the same way,
#: and, per-subject normalised, against per-subject-normalised band power; the last layer
#: (today's probe) is exploratory, with its own Holm correction
COMPARISONS = (
    ("best_layer", "random", "best_layer", "random init", "confirmatory"),
    ("best_layer_subject_norm", "random", "best_layer_subject_norm", "random init",
     "confirmatory"),
    ("best_layer_subject_norm", "band_power_subject_norm", "features",
     "band power, per-subject normalised", "confirmatory"),
    ("last", "random", "last", "random init", "exploratory"),
    ("best_layer", "band_power", "features", "band power", "exploratory"),
)


def compare(scores) -> list[dict]:
    """The rows of COMPARISONS on report subjects, per dataset, arm and budget; Holm within
    each family."""
    from brainfm.bench.stats import cohens_dz, crossed_bootstrap, holm

    rep = scores[scores["subset"] == "report"]
    out = []
    for (dataset, budget), sub in rep.groupby(["dataset", "budget"], sort=False):
        def matrix(arm, readout):
            return sub[(sub["arm"] == arm) & (sub["readout"] == readout)].pivot_table(
                index="subject", columns="run", values="balanced_accuracy")
        for arm in [a for a in ARMS if (sub["arm"] == a).any()]:
            for readout, control_arm, control_readout, control, family in COMPARISONS:
                if control_arm == "random":         # the same family's random network
                    control_arm = RANDOM_ARM[ARM_FAMILY.get(arm, "criss_cross")]
                a, b = matrix(arm, readout), matrix(control_arm, control_readout)
                if a.empty or b.empty:
                    continue
                common = a.index.intersection(b.index)
                A, B = a.loc[common].to_numpy(), b.loc[common].to_numpy()
                est, lo, hi, p = crossed_bootstrap(A, B, seed=0)
                diff = np.nanmean(A, axis=1) - np.nanmean(B, axis=1)
                out.append({"dataset": dataset, "budget": budget, "arm": arm,
                            "readout": readout, "control": control, "family": family,
                            "score": float(np.nanmean(A)), "control_score": float(np.nanmean(B)),
                            "diff": est, "ci_low": lo, "ci_high": hi, "p": p,
                            "dz": cohens_dz(diff), "n_subjects": len(common),
                            "n_runs": A.shape[1], "n_control_runs": B.shape[1]})
    for family in ("confirmatory", "exploratory"):
        rows = [r for r in out if r["family"] == family]
        for r, p in zip(rows, holm([r["p"] for r in rows])):
            r["p_holm"] = float(p)
    return out


def markdown(comparisons: list[dict]) -> str:
    lines = ["| family | dataset | training subjects | arm | read-out | control | arm score | "
             "control score | difference [95% CI] | d_z | runs | p | p (Holm) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in comparisons:
        lines.append(f"| {r['family']} | {r['dataset']} | {r['budget']} | {r['arm']} | "
                     f"{r['readout']} | "
                     f"{r['control']} | {r['score']:.3f} | {r['control_score']:.3f} | "
                     f"{r['diff']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}] | "
                     f"{r['dz']:.2f} | {r['n_runs']} vs {r['n_control_runs']} | "
                     f"{r['p']:.3g} | {r['p_holm']:.3g} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default="eegmat,ssvep_exoskeleton,eegmmidb_baseline")
    ap.add_argument("--arms", default=",".join(ARMS))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--budgets", default="1,2,4,8")
    ap.add_argument("--draws", type=int, default=3)
    ap.add_argument("--folds", type=int, default=12,
                    help="subject-grouped folds (leave-one-subject-out when subjects <= folds)")
    ap.add_argument("--split-seed", type=int, default=0)
    ap.add_argument("--runs", default="runs/repr")
    ap.add_argument("--store-root", default="stores")
    ap.add_argument("--out", default="benchmarks/results/representations")
    ap.add_argument("--print-commands", action="store_true")
    ap.add_argument("--from-scores", action="store_true",
                    help="recompute comparisons and tables from OUT/scores.csv only")
    ap.add_argument("--append", action="store_true",
                    help="score only --arms (and controls not skipped) and replace their rows "
                         "in OUT's existing raw files, keeping every other arm's")
    ap.add_argument("--skip-controls", default="",
                    help="controls not to recompute (e.g. random,band_power,"
                         "band_power_subject_norm: already in OUT/scores.csv)")
    args = ap.parse_args()
    args.skip_controls = [c for c in args.skip_controls.split(",") if c]
    args.arms = args.arms.split(",")
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.budgets = [int(b) for b in args.budgets.split(",") if b]
    datasets = args.datasets.split(",")
    out = Path(args.out)
    if args.print_commands:
        for s in args.seeds:
            for arm in args.arms:
                for d in datasets:
                    print(pretrain_command(Path(args.runs), arm, d, s))
        return

    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    if not args.from_scores:
        rows, picked = [], []
        for d in datasets:
            score_dataset(d, args, rows, picked)
        tables = {"scores": pd.DataFrame(rows), "layers_picked": pd.DataFrame(picked),
                  "runs": pd.DataFrame(run_summaries(Path(args.runs), args.arms, datasets,
                                                     args.seeds))}
        for name, table in tables.items():
            if args.append:                 # the other arms' rows stay as they were
                old = pd.read_csv(out / f"{name}.csv", dtype={"subject": str, "budget": str})
                column = "arm"
                table = pd.concat([old[~old[column].isin(table[column].unique())], table])
            table.to_csv(out / f"{name}.csv", index=False)
        overrides = {a: ARMS[a] for a in args.arms}
        if args.append:  # what the earlier arms were run with, as recorded then
            overrides = {**json.loads((out / "args.json").read_text())["arms_overrides"],
                         **overrides}
        (out / "args.json").write_text(json.dumps(
            {**vars(args), "arms": list(overrides), "arms_overrides": overrides}, indent=1))
    scores = pd.read_csv(out / "scores.csv", dtype={"subject": str, "budget": str})
    comparisons = compare(scores)
    pd.DataFrame(comparisons).to_csv(out / "comparisons.csv", index=False)
    (out / "summary.md").write_text(markdown(comparisons) + "\n")
    print(markdown(comparisons))


if __name__ == "__main__":
    main()

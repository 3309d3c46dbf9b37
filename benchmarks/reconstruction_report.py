"""The reconstruction bar on subjects that chose nothing, over several pretraining runs.

The masked-patch recipe (learning rate, mask ratio, components; docs/pretraining.md section 4)
was chosen on the held-out subjects of ``pretrain_all`` at seed 0. Those subjects are the
*selection* subjects here; every other subject of the dataset is a *report* subject. Each
leave-dataset-out reconstruction run of benchmarks/representations.py (``runs/repr/recon``,
one per seed) never saw the dataset at all, so on its report subjects it is scored on
recordings that neither trained it nor chose its recipe.

Per report subject, the masked-patch squared error of the model and of each trivial predictor
(zeros, visible-channel mean, temporal interpolation; :mod:`brainfm.tasks.trivial`) on the same
hidden patches (Bernoulli masks at the recipe's ratio, seeded per batch, identical for every
run). The dataset's best trivial predictor is the one with the lowest summed error over its
report subjects. Reported: model / best trivial summed over report subjects, per run, and the
per-subject difference (model - best trivial) / zeros with a crossed bootstrap CI over
subjects and runs (:func:`brainfm.bench.stats.crossed_bootstrap`).

    python benchmarks/reconstruction_report.py --out benchmarks/results/reconstruction_report
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CORPUS = ("eegmat", "ssvep_exoskeleton", "muse_p300", "bonn", "delhi", "eegmmidb_baseline")


def selection_groups(store_root: Path, seed: int = 0) -> set[str]:
    """The held-out groups pretrain_all validated on at ``seed`` (where its recipe was
    chosen): the DataModule's own split of the six continuous stores."""
    from brainfm.configuration import compose_config
    from brainfm.data.datamodule import BrainDataModule
    from brainfm.pretrain_run import ensure_stores

    cfg = compose_config(["experiment=pretrain_all", f"seed={seed}"], config_name="pretrain")
    stores = ensure_stores(list(cfg.data.datasets), store_root, None, view="continuous")
    dm = BrainDataModule([str(s) for s in stores], store_root=str(store_root),
                         patch_len=cfg.model.patch_len, batch_size=32,
                         val_fraction=cfg.data.val_fraction, seed=seed,
                         max_abs=cfg.data.max_abs, max_abs_relative=cfg.data.max_abs_relative)
    dm.setup()
    from brainfm.data.groups import subject_groups

    return set(map(str, subject_groups(dm.splits["val"].table)))


def per_subject_errors(model, windows, groups, ratio: float, batch_size: int = 32) -> dict:
    """group -> summed squared error on hidden patches of the model and each trivial
    predictor (masks seeded per batch, so every model sees the same ones)."""
    import torch

    from brainfm.tasks.masking import sample_patch_mask
    from brainfm.tasks.trivial import hidden_errors

    out: dict[str, np.ndarray] = {}
    model.eval()
    order = np.arange(len(windows))
    with torch.no_grad():
        for i, start in enumerate(range(0, len(order), batch_size)):
            rows = order[start:start + batch_size]
            batch = windows.load_batch(rows)
            x, cm = batch["x"], batch["channel_mask"]
            g = torch.Generator().manual_seed(10_000 + i)
            mask = sample_patch_mask(x.shape[:3], ratio, "bernoulli", cm, generator=g)
            errs = hidden_errors(x, mask, cm, model(x, batch["sensors"], cm, mask=mask))
            errs = errs.double().numpy()
            for r, e in zip(batch["row"].numpy(), errs):
                g_ = groups[r]
                out[g_] = out.get(g_, 0.0) + e
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default="eegmat,ssvep_exoskeleton,eegmmidb_baseline")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--runs", default="runs/repr/recon")
    ap.add_argument("--store-root", default="stores")
    ap.add_argument("--mask-ratio", type=float, default=0.3)
    ap.add_argument("--out", default="benchmarks/results/reconstruction_report")
    args = ap.parse_args()

    import pandas as pd
    import torch

    from brainfm.bench.stats import crossed_bootstrap
    from brainfm.checkpoint import from_pretrained
    from brainfm.data.groups import subject_groups
    from brainfm.data.loading import WindowDataset
    from brainfm.run_folder import run_checkpoint

    torch.set_num_threads(1)
    store_root, out = Path(args.store_root), Path(args.out)
    chosen_on = selection_groups(store_root)
    rows = []
    for d in args.datasets.split(","):
        windows = WindowDataset([store_root / f"{d}.continuous"])
        groups = subject_groups(windows.table).astype(str)
        for s in (int(v) for v in args.seeds.split(",")):
            model = from_pretrained(run_checkpoint(Path(args.runs) / f"without_{d}_seed{s}"))
            for group, e in per_subject_errors(model, windows, groups, args.mask_ratio).items():
                rows.append({"dataset": d, "run": s, "group": group,
                             "subset": "selection" if group in chosen_on else "report",
                             "model": e[0], "zeros": e[1], "spatial": e[2], "temporal": e[3]})
            print(f"  {d} run {s} scored", flush=True)
    scores = pd.DataFrame(rows)
    out.mkdir(parents=True, exist_ok=True)
    scores.to_csv(out / "errors.csv", index=False)
    summary = []
    for d, sub in scores[scores["subset"] == "report"].groupby("dataset", sort=False):
        totals = sub.groupby("run")[["model", "zeros", "spatial", "temporal"]].sum()
        best = min(("zeros", "spatial", "temporal"), key=lambda k: totals[k].sum())
        ratios = (totals["model"] / totals[best]).tolist()
        per = sub.assign(diff=(sub["model"] - sub[best]) / sub["zeros"]).pivot_table(
            index="group", columns="run", values="diff")
        est, lo, hi, p = crossed_bootstrap(per.to_numpy())
        summary.append({"dataset": d, "best_trivial": best, "runs": len(ratios),
                        "report_subjects": len(per),
                        "selection_subjects": int(scores[(scores["dataset"] == d) & (
                            scores["subset"] == "selection")]["group"].nunique()),
                        "model_vs_best_trivial_per_run": ratios,
                        "diff_vs_zeros": est, "ci_low": lo, "ci_high": hi, "p": p})
        print(f"{d}: model / {best} = " + ", ".join(f"{r:.3f}" for r in ratios)
              + f"; per subject (model - {best}) / zeros {est:+.3f} [{lo:+.3f}, {hi:+.3f}]")
    (out / "summary.json").write_text(json.dumps({"args": vars(args), "rows": summary},
                                                 indent=1))


if __name__ == "__main__":
    main()

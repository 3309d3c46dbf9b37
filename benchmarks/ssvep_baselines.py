"""Sanity anchors of the SSVEP baselines: balanced accuracy, leave-one-subject-out.

    python benchmarks/ssvep_baselines.py --store-root stores [--folds 4] [--baselines ...]

Prepare the store first (``brainfm-prep dataset=ssvep_exoskeleton``). Each fold fits a fresh
baseline on the other subjects' windows only (no validation set: nothing is selected) and
scores its held-out subject; prints one line per baseline (mean +- sd over the folds run)
and the per-subject scores, for docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from brainfm.bench.baselines import (arrays_from_store, declared_band, evaluate_baseline,
                                     make_baseline)
from brainfm.bench.protocols import LeaveOneSubjectOut
from brainfm.data.loading import WindowDataset


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store-root", type=Path, default=Path("stores"))
    ap.add_argument("--dataset", default="ssvep_exoskeleton")
    ap.add_argument("--folds", type=int, default=None, help="first N subjects only")
    ap.add_argument("--baselines", nargs="+", default=["cca", "fbcca", "psd_lr", "fb_ts_lr",
                                                        "ts_lr"])
    args = ap.parse_args()
    windows = WindowDataset([args.store_root / args.dataset])
    store = windows.stores[0]
    X, y = arrays_from_store(windows)
    protocol = LeaveOneSubjectOut(val_subjects=0)
    groups = [s.test_group for s in protocol.split(windows.table)][:args.folds]
    print(f"{args.dataset}: {len(X)} windows of {X.shape[-1] / store.sfreq:g} s, "
          f"{len(groups)} LOSO folds, chance {1 / len(store.classes):.3f}")
    for name in args.baselines:
        def factory():
            return make_baseline(name, classes=store.classes, sfreq=store.sfreq)

        t0 = time.perf_counter()
        res = evaluate_baseline(factory, X, y, windows.table, protocol,
                                n_classes=len(store.classes), groups=groups)
        ba = res["balanced_accuracy"]
        print(f"{name:10s} band {declared_band(factory()):18s} balanced accuracy "
              f"{ba.mean():.3f} +- {ba.std():.3f} over {len(res)} subjects "
              f"({time.perf_counter() - t0:.0f} s); per subject: "
              + " ".join(f"{v:.2f}" for v in ba))


if __name__ == "__main__":
    main()

"""Learning curve of a compact network on one LOSO fold, with the benchmark's recipe.

    python benchmarks/learning_curve.py --store-root stores --model shallow --epochs 60 \
        --test-subject 03 --out docs/figures/learning_curve_shallow_ssvep.png

Trains exactly as a bench cell does (:class:`brainfm.bench.pipelines.NeuralPipeline`: warm-up
then cosine, label smoothing, validation subjects choosing the epoch) and, for the curve
only, scores the held-out subject after every epoch. The test score never chooses anything:
it shows whether the budget lets the model converge. Writes the plot and a CSV beside it.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch
from sklearn.metrics import balanced_accuracy_score

from brainfm.bench.pipelines import NeuralPipeline
from brainfm.bench.protocols import LeaveOneSubjectOut
from brainfm.data.loading import WindowDataset, batch_loader


class EpochScores(L.Callback):
    """After each validation: train loss, validation loss and balanced accuracy, and the
    test subject's balanced accuracy (for the plot, never for selection)."""

    def __init__(self, test: WindowDataset):
        self.loader = batch_loader(test, 128, False, 0)
        self.y = test.table["label"].to_numpy()
        self.rows = []

    def on_validation_end(self, trainer, module):
        if trainer.sanity_checking:
            return
        was_training = module.training
        module.eval()
        pred, order = [], []
        with torch.no_grad():
            for batch in self.loader:
                pred.append(module(batch).argmax(1))
                order.append(batch["row"])
        module.train(was_training)
        pred = torch.cat(pred).numpy()[np.argsort(torch.cat(order).numpy())]
        m = trainer.callback_metrics
        self.rows.append({"epoch": trainer.current_epoch + 1,
                          "train_loss": float(m.get("train/loss", np.nan)),
                          "val_loss": float(m["val/loss"]),
                          "val_balanced_accuracy": float(m["val/balanced_accuracy"]),
                          "test_balanced_accuracy": balanced_accuracy_score(self.y, pred)})
        print(" ".join(f"{k} {v:.3f}" for k, v in self.rows[-1].items()), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store-root", type=Path, default=Path("stores"))
    ap.add_argument("--dataset", default="ssvep_exoskeleton")
    ap.add_argument("--model", default="shallow", choices=["shallow", "eegnet"])
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--test-subject", default="03")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--out", type=Path, default=Path("learning_curve.png"))
    args = ap.parse_args()
    windows = WindowDataset([args.store_root / args.dataset])
    protocol = LeaveOneSubjectOut(val_subjects=0.2, min_val_subjects=3)
    split = next(s for s in protocol.split(windows.table)
                 if s.test_group.endswith("/" + args.test_subject))
    recorder = EpochScores(windows.subset(split.test))
    pipe = NeuralPipeline(args.model, epochs=args.epochs, batch_size=args.batch_size,
                          backbone_lr=args.lr, head_lr=args.lr,
                          warmup_epochs=max(1, args.epochs // 20))
    t0 = time.perf_counter()
    pred = pipe.run_fold(windows, split, seed=0, callbacks=[recorder])
    curve = pd.DataFrame(recorder.rows)
    chosen = pred.info["selected_epoch"]
    final = balanced_accuracy_score(windows.table["label"].to_numpy()[pred.rows], pred.y_pred)
    print(f"{args.model} on {args.dataset}, test subject {args.test_subject}, "
          f"{len(windows.table.iloc[split.val]['subject'].unique())} validation subjects, "
          f"{args.epochs} epochs in {time.perf_counter() - t0:.0f} s; epoch chosen on "
          f"{pred.info['selected_on']}: {chosen}; test balanced accuracy there {final:.3f}")
    print(curve.round(3).to_string(index=False))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    curve.to_csv(args.out.with_suffix(".csv"), index=False)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax1.plot(curve["epoch"], curve["train_loss"], label="train (last batch)")
    ax1.plot(curve["epoch"], curve["val_loss"], label="validation subjects")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("cross-entropy")
    ax1.legend()
    ax2.plot(curve["epoch"], curve["val_balanced_accuracy"], label="validation subjects")
    ax2.plot(curve["epoch"], curve["test_balanced_accuracy"], label="test subject (not used)")
    ax2.axvline(chosen, color="grey", ls="--", label=f"chosen epoch {chosen}")
    ax2.axhline(1 / len(windows.stores[0].classes), color="k", lw=0.5, label="chance")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("balanced accuracy")
    ax2.legend(fontsize=7)
    fig.suptitle(f"{args.model}, {args.dataset}, LOSO fold test-subject={args.test_subject}")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out} and {args.out.with_suffix('.csv')}")


if __name__ == "__main__":
    main()

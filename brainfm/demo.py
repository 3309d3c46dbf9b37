"""`make demo`: brainfm end to end on the embedded real sample.

Prepares the 4-subject eegmat sample into a corpus store through the same Hydra entry point
users call (``brainfm-prep``), loads a batch with the DataModule, pretrains a tiny criss-cross
model on it (``brainfm-pretrain experiment=pretrain_quick``) and loads the model file back.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store-root", default="stores/demo",
                        help="where the demo's corpus store goes (default: stores/demo)")
    parser.add_argument("--run-dir", default="runs/demo",
                        help="where the demo's pretraining run goes (default: runs/demo)")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    cmd = [sys.executable, "-c", "from brainfm.cli import prep_main; prep_main()",
           "dataset=eegmat_sample", f"store_root={args.store_root}", "progress=false"]
    print("$ brainfm-prep dataset=eegmat_sample store_root=" + args.store_root, flush=True)
    done = subprocess.run(cmd)
    if done.returncode:
        return done.returncode

    from brainfm.data.datamodule import BrainDataModule

    dm = BrainDataModule(["eegmat_sample"], store_root=args.store_root, batch_size=16,
                         val_fraction=0.25, seed=0)
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    print("\nOne training batch (subject-level split: "
          + ", ".join(f"{k}={len(v)} windows" for k, v in dm.splits.items()) + "):")
    for key, value in batch.items():
        print(f"  {key:13s} {tuple(value.shape)} {str(value.dtype).replace('torch.', '')}")
    x = batch["x"]
    print(f"  x: mean {x.mean():+.3f}, std {x.std():.3f} (units of 100 uV), finite: "
          f"{bool(x.isfinite().all())}")
    run_dir = Path(args.run_dir)
    pretrain = [str(Path(sys.executable).with_name("brainfm-pretrain")),
                "experiment=pretrain_quick", f"store_root={args.store_root}",
                f"hydra.run.dir={run_dir}", "trainer.enable_progress_bar=false",
                "trainer.enable_model_summary=false"]
    print("\n$ brainfm-pretrain experiment=pretrain_quick  (tiny model, 2 epochs)", flush=True)
    done = subprocess.run(pretrain, capture_output=True, text=True)
    if done.returncode:
        print(done.stdout[-2000:], done.stderr[-4000:], file=sys.stderr)
        return done.returncode
    import json

    import brainfm

    result = json.loads((run_dir / "result.json").read_text())
    model = brainfm.from_pretrained(result["model_file"])
    print(f"  {result['global_step']} steps; masked-patch MSE on held-out subjects, relative "
          "to predicting zeros:")
    for name, row in result["heldout"].items():
        verdict = "beats it" if row["model_vs_best_trivial"] < 1 else "does not beat it yet"
        print(f"    {name}: model {row['model_vs_zero']:.3f}, best trivial predictor "
              f"({row['best_trivial']}) {row['model_vs_zero'] / row['model_vs_best_trivial']:.3f}"
              f": {verdict} (experiment=pretrain_all does: docs/pretraining.md)")
    print(f"  model file {result['model_file']}: {model.config['n_layers']} layers, "
          f"trained on {model.extra['datasets']} at {model.extra['sfreq']:g} Hz")
    print(f"\ndemo finished in {time.perf_counter() - t0:.1f} s; store at "
          f"{Path(args.store_root).resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

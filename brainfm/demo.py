"""`make demo`: the data layer end to end on the embedded real sample, then a peek at a batch.

Prepares the 4-subject eegmat sample into a corpus store through the same Hydra entry point
users call (``brainfm-prep``), loads it with the DataModule and prints what a model would see.
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
    print(f"\ndemo finished in {time.perf_counter() - t0:.1f} s; store at "
          f"{Path(args.store_root).resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

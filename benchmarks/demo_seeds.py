"""The demo's pretraining, scored on its held-out subject for a few seeds: the raw results
behind README's `make demo` paragraph.

Runs `make demo`'s first two stages (brainfm-prep of the embedded sample, then
``brainfm-pretrain experiment=pretrain_demo``) once per seed; each seed holds out another of
the sample's 4 subjects. Keeps each run's held-out figures (result.json's ``heldout``).
About half a minute of CPU per seed.

    python benchmarks/demo_seeds.py --seeds 0,1,2 --out benchmarks/results/demo_heldout.json
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _command(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--out", type=Path, default=HERE / "results" / "demo_heldout.json")
    p.add_argument("overrides", nargs="*", help="extra Hydra overrides for brainfm-pretrain")
    args = p.parse_args(argv)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        stores = Path(tmp) / "stores"
        subprocess.run([_command("brainfm-prep"), "dataset=eegmat_sample",
                        f"store_root={stores}", f"hydra.run.dir={tmp}/prep", "progress=false"],
                       check=True, capture_output=True)
        for seed in map(int, args.seeds.split(",")):
            run = Path(tmp) / f"seed{seed}"
            subprocess.run([_command("brainfm-pretrain"), "experiment=pretrain_demo",
                            f"store_root={stores}", f"seed={seed}", f"hydra.run.dir={run}",
                            *args.overrides], check=True, capture_output=True)
            result = json.loads((run / "result.json").read_text())
            runs.append({"seed": seed, "heldout": result["heldout"]})
            print(seed, {k: round(v["model_vs_best_trivial"], 3)
                         for k, v in result["heldout"].items()})
    args.out.write_text(json.dumps({"command": "brainfm-pretrain experiment=pretrain_demo",
                                    "overrides": args.overrides, "runs": runs}, indent=1))
    print(f"raw results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

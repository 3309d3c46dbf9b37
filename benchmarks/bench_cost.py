"""What an experiment costs before it runs: its cells and the training work of its networks.

Counts, from the experiment's config and the corpus stores, every cell and, per network
pipeline, the window-passes of training (training windows of each fold x epochs x seeds) and
their tokens (x channels x patches: the criss-cross transformer's cost grows with them). GPU
hours are then work / throughput; **no GPU has timed these cells yet**, so the throughputs
are assumptions given on the command line (``--token-rate`` for the criss-cross pipelines,
``--window-rate`` for EEGNet and ShallowConvNet), and the first array tasks' measured cell
seconds (``seconds`` in each cell file) should replace them.

    python benchmarks/bench_cost.py --experiment bench_full --write
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
COMPACT = ("eegnet", "shallow")


def workload(experiment: dict, store_root) -> dict:
    """pipeline kind -> {cells, window_passes, token_passes} (classical and probe: cells only)."""
    from brainfm.bench.cells import _folds, _labelled_windows, _pipeline_for

    out = defaultdict(lambda: {"cells": 0, "window_passes": 0, "token_passes": 0})
    seeds = len(experiment.get("seeds", [0]))
    for dataset in experiment["datasets"]:
        windows = _labelled_windows(store_root, dataset)
        spec = experiment["protocols"].get(dataset) or experiment["protocols"]["default"]
        folds = _folds(windows, spec)[:experiment.get("max_folds") or None]
        t = windows.table
        tokens = (t["n_channels"] * t["n_samples"] // 200).to_numpy()   # 1 s patches at 200 Hz
        for raw in experiment["pipelines"].values():
            pipe = _pipeline_for(dataset, raw)
            if pipe is None:
                continue
            row = out["compact" if pipe["kind"] in COMPACT else
                      "criss-cross" if pipe["kind"] in ("finetune", "scratch") else pipe["kind"]]
            row["cells"] += len(folds) * seeds
            if pipe["kind"] in (*COMPACT, "finetune", "scratch"):
                epochs = int(pipe.get("epochs", 50)) * seeds
                row["window_passes"] += epochs * sum(len(f.train) for f in folds)
                row["token_passes"] += epochs * sum(int(tokens[f.train].sum()) for f in folds)
    return dict(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--experiment", default="bench_full")
    p.add_argument("--store-root", type=Path,
                   default=Path(os.environ.get("BRAINFM_STORE_ROOT", ROOT / "stores")))
    p.add_argument("--token-rate", type=float, default=3e5,
                   help="assumed criss-cross training tokens per GPU-second")
    p.add_argument("--window-rate", type=float, default=5e3,
                   help="assumed EEGNet / ShallowConvNet training windows per GPU-second")
    p.add_argument("--write", action="store_true", help="update the docs (make docs)")
    args = p.parse_args(argv)
    from omegaconf import OmegaConf

    from brainfm.configuration import compose_config
    from brainfm.pretrain_run import ensure_stores

    cfg = compose_config([f"experiment={args.experiment}", f"store_root={args.store_root}"],
                         config_name="bench")
    experiment = OmegaConf.to_container(cfg, resolve=False)
    ensure_stores(list(experiment["datasets"]), args.store_root, None)
    rows = workload(experiment, args.store_root)
    result = {"experiment": args.experiment, "token_rate": args.token_rate,
              "window_rate": args.window_rate, "rows": rows}
    (ROOT / "benchmarks" / "results").mkdir(exist_ok=True)
    (ROOT / "benchmarks" / "results" / f"bench_cost_{args.experiment}.json").write_text(
        json.dumps(result, indent=1, sort_keys=True) + "\n")
    print(render(result))
    if args.write:
        from benchmarks.docs_blocks import write

        write()
    return 0


def render(result: dict) -> str:
    """docs/benchmarks.md's table (benchmarks/docs_blocks.py, block bench-full-cost)."""
    rows, token_rate, window_rate = result["rows"], result["token_rate"], result["window_rate"]
    hours = {"criss-cross": rows.get("criss-cross", {}).get("token_passes", 0)
             / token_rate / 3600,
             "compact": rows.get("compact", {}).get("window_passes", 0) / window_rate / 3600}
    lines = ["| pipelines | cells | training window-passes | training token-passes | "
             "GPU-hours at the assumed rate |", "|---|---|---|---|---|"]
    for kind, row in sorted(rows.items()):
        gpu = f"{hours[kind]:.1f}" if kind in hours else "small (no training)"
        lines.append(f"| {kind} | {row['cells']:,} | {row['window_passes']:,} | "
                     f"{row['token_passes']:,} | {gpu} |")
    total_cells = sum(r["cells"] for r in rows.values())
    return (f"`python benchmarks/bench_cost.py --experiment {result['experiment']} "
            f"--token-rate {token_rate:g} --window-rate {window_rate:g} --write`: "
            f"{total_cells:,} cells.\n\n" + "\n".join(lines) + "\n\n"
            f"Cells' training only, at **assumed** rates: {token_rate:,.0f} criss-cross "
            f"tokens (one channel x 1 s patch) and {window_rate:,.0f} EEGNet / "
            "ShallowConvNet windows per GPU-second. Not counted: validation and test passes, "
            "feature extraction for the probes, each cell's start-up, and the pretraining of "
            "the leave-dataset-out checkpoints.\n\n"
            f"Total: about **{sum(hours.values()):.0f} GPU-hours** for the cells.")


if __name__ == "__main__":
    sys.exit(main())

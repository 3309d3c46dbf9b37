"""brainfm-bench wall time: ``executor=serial`` against ``executor=local`` with 2 workers.

A bench_quick-sized subset without pretraining (so that nothing but the cells is timed): the
first ``--folds`` LOSO folds of eegmat and ssvep_exoskeleton, each with its paradigm's
classical baseline, EEGNet and a tiny criss-cross from scratch (``--epochs`` each).
Each run is a fresh process with a fresh results folder, timed from its start to its tables
(imports, worker start-up and the parent's planning included, as a user waits for them); the
serial process uses every core's threads (torch's default), the local one 2 workers of one
thread each. Sides alternate, so drifts in machine load hit both; the figures are medians of
``--repeats``. Every run's results.csv must equal the first serial run's, value for value.

    python benchmarks/executor_speed.py --repeats 3 --write
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TINY = {"d_model": 32, "n_layers": 2, "n_heads": 4, "d_ff": 64, "positional": "sensor"}


def experiment(folds: int, epochs: int = 1) -> dict:
    net = {"epochs": epochs, "patience": epochs}
    return {"datasets": ["eegmat", "ssvep_exoskeleton"], "seeds": [0], "max_folds": folds,
            "protocols": {"default": {"name": "loso"}},
            "pipelines": {
                "cca": {"kind": "classical", "baseline": "cca", "datasets": ["ssvep_exoskeleton"]},
                "csp_lda": {"kind": "classical", "baseline": "csp_lda", "datasets": ["eegmat"]},
                "eegnet": {"kind": "eegnet", **net},
                "criss_cross_scratch": {"kind": "scratch", **net, "backbone": {"model": TINY}}}}


def child(args) -> None:
    from brainfm.bench.runner import run_benchmark

    exp = experiment(args.folds, args.epochs)
    if args.child == "local":
        exp["executor"] = {"name": "local", "workers": 2, "threads_per_worker": 1,
                           "poll_s": 0.5}
    result = run_benchmark(exp, args.store_root, args.out, progress=False)
    print(json.dumps({"computed": result["computed"], "skipped": result["skipped"]}))


def _run(side: str, args, out: Path) -> float:
    cmd = [sys.executable, __file__, "--child", side, "--out", str(out),
           "--store-root", str(args.store_root), "--folds", str(args.folds),
           "--epochs", str(args.epochs)]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    wall = time.perf_counter() - t0
    if done.returncode:
        raise RuntimeError(f"{side} run failed:\n{done.stderr[-3000:]}")
    counts = json.loads(done.stdout.strip().splitlines()[-1])
    assert counts["skipped"] == 0, f"{out} was not empty: {counts}"
    return wall


def _table(out: Path):
    import pandas as pd

    table = pd.read_csv(out / "results.csv", dtype={"subject": str})
    return table.sort_values(["dataset", "pipeline", "fold", "subject", "metric"],
                             ignore_index=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--folds", type=int, default=2, help="LOSO folds per dataset")
    p.add_argument("--epochs", type=int, default=1, help="epochs of each network")
    p.add_argument("--store-root", type=Path,
                   default=Path(os.environ.get("BRAINFM_STORE_ROOT", ROOT / "stores")))
    p.add_argument("--write", action="store_true", help="update the docs (make docs)")
    p.add_argument("--note", default="", help="a line on the machine's state, for the doc")
    p.add_argument("--child", choices=["serial", "local"])
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    if args.child:
        child(args)
        return 0
    sys.path.insert(0, str(ROOT))
    from brainfm.pretrain_run import ensure_stores

    ensure_stores(experiment(args.folds)["datasets"], args.store_root, None)
    walls = {"serial": [], "local": []}
    with tempfile.TemporaryDirectory(prefix="executor_speed_") as tmp:
        reference = None
        for r in range(args.repeats):
            for side in ("serial", "local") if r % 2 == 0 else ("local", "serial"):
                out = Path(tmp) / f"{side}{r}"
                walls[side].append(_run(side, args, out))
                table = _table(out)
                if reference is None:
                    reference = table
                elif not table.equals(reference):
                    raise SystemExit(f"{side} run {r}: results differ from the first run's")
                print(f"repeat {r} {side}: {walls[side][-1]:.1f} s", flush=True)
        n_cells = reference.groupby(["dataset", "pipeline", "fold"]).ngroups
    serial, local = (statistics.median(walls[s]) for s in ("serial", "local"))
    result = {"cells": n_cells, "folds": args.folds, "epochs": args.epochs,
              "repeats": args.repeats, "serial_s": walls["serial"], "local_s": walls["local"],
              "ratio_serial_over_local": serial / local, "cpus": os.cpu_count(),
              "note": args.note}
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "executor_speed.json").write_text(json.dumps(result, indent=1) + "\n")
    print(render(result))
    if args.write:
        from benchmarks.docs_blocks import write

        write()
    return 0


def render(result: dict) -> str:
    """docs/performance.md's table (benchmarks/docs_blocks.py, block executor-speed)."""
    serial, local = (statistics.median(result[k]) for k in ("serial_s", "local_s"))
    note = f"; {result['note']}" if result.get("note") else ""
    return (f"`python benchmarks/executor_speed.py --repeats {result['repeats']} --folds "
            f"{result['folds']} --epochs {result['epochs']} --write`: {result['cells']} cells "
            f"(the first {result['folds']} LOSO fold(s) of eegmat and ssvep_exoskeleton; the "
            f"classical baseline, EEGNet and a tiny criss-cross from scratch, "
            f"{result['epochs']} epoch(s) each), {result['cpus']} CPUs{note}.\n\n"
            "| executor | wall s per run (each) | median |\n|---|---|---|\n"
            "| serial (one process, torch's default threads) | "
            f"{', '.join(f'{w:.1f}' for w in result['serial_s'])} | {serial:.1f} |\n"
            "| local, 2 workers x 1 thread | "
            f"{', '.join(f'{w:.1f}' for w in result['local_s'])} | {local:.1f} |\n\n"
            f"serial / local wall time: **{serial / local:.2f}x**; every run's results.csv "
            "equals the first serial run's, value for value.")


if __name__ == "__main__":
    sys.exit(main())

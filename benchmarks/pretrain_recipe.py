"""Which masked-patch recipe learns: held-out loss beside the trivial predictors, per dataset.

Runs ``brainfm-pretrain`` once per variant (same corpus, seed, steps and validation subjects)
and tabulates, for every held-out dataset, the model's masked MSE relative to the best
trivial predictor (< 1: the model beats it) from each run's training_summary.json. Choices
are made on these validation subjects only; downstream test subjects are never looked at.

    python benchmarks/pretrain_recipe.py --steps 400 --out benchmarks/results/pretrain_recipe.json \
        --variant baseline= --variant ampnorm=model.amplitude_norm=channel ...

A variant is ``name=override[,override...]`` (Hydra overrides of brainfm-pretrain; commas
inside one override are not supported). ``--steps-multipliers 1,2,4`` runs each variant at
several budgets (the learning-rate schedule scales with them).
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


def run_variant(name: str, overrides: list[str], steps: int, val_every: int, out_root: Path,
                experiment: str, seed: int, threads: int = 1) -> dict:
    run_dir = out_root / f"{name}_s{steps}_seed{seed}"
    summary = run_dir / "training_summary.json"
    if not summary.exists():
        cmd = [str(Path(sys.executable).with_name("brainfm-pretrain")),
               f"experiment={experiment}", f"trainer.max_steps={steps}",
               f"trainer.val_check_interval={val_every}", "trainer.enable_progress_bar=false",
               "trainer.enable_model_summary=false", f"seed={seed}",
               f"hydra.run.dir={run_dir}", *overrides]
        t0 = time.perf_counter()
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode:
            raise RuntimeError(f"variant {name} failed:\n{proc.stderr[-3000:]}")
        (run_dir / "wall_seconds.txt").write_text(f"{time.perf_counter() - t0:.1f}\n")
    result = json.loads(summary.read_text())
    wall = float((run_dir / "wall_seconds.txt").read_text())
    return {"variant": name, "overrides": overrides, "steps": steps, "seed": seed,
            "wall_s": wall, "heldout": result["heldout"], "drawn_mix": result["drawn_mix"]}


def table(rows: list[dict]) -> str:
    datasets = sorted({d for r in rows for d in r["heldout"]})
    head = "| variant | steps | " + " | ".join(datasets) + " | worst multichannel |"
    lines = [head, "|" + "---|" * (len(datasets) + 3)]
    for r in rows:
        cells, worst = [], 0.0
        for d in datasets:
            h = r["heldout"].get(d)
            if h is None:
                cells.append("")
                continue
            cells.append(f"{h['model_vs_best_trivial']:.3f} ({h['best_trivial']})")
            if h["multichannel"]:
                worst = max(worst, h["model_vs_best_trivial"])
        lines.append(f"| {r['variant']} | {r['steps']} | " + " | ".join(cells)
                     + f" | {worst:.3f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", action="append", required=True,
                    help="name=override[,override...]")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--steps-multipliers", default="1")
    ap.add_argument("--val-every", type=int, default=0, help="0: at the end only")
    ap.add_argument("--experiment", default="pretrain_all")
    ap.add_argument("--seed", default="0", help="one seed or several: 0,1,2")
    ap.add_argument("--parallel", type=int, default=2, help="runs at once")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per run")
    ap.add_argument("--runs", default="runs/recipe")
    ap.add_argument("--out", default="benchmarks/results/pretrain_recipe.json")
    args = ap.parse_args()
    os.environ.setdefault("MALLOC_ARENA_MAX", "2")
    rows = json.loads(Path(args.out).read_text()) if Path(args.out).exists() else []
    done = {(r["variant"], r["steps"], r["seed"]) for r in rows}
    jobs = []
    for mult in [int(m) for m in args.steps_multipliers.split(",")]:
        for spec in args.variant:
            name, _, rest = spec.partition("=")
            for seed in [int(s) for s in str(args.seed).split(",")]:
                if (name, args.steps * mult, seed) not in done:
                    jobs.append((name, [o for o in rest.split(",") if o], args.steps * mult,
                                 seed))
    # several single-threaded runs side by side use a few cores better than one run's
    # threads do, and each run's time is then comparable with the others'
    with concurrent.futures.ThreadPoolExecutor(args.parallel) as pool:
        futures = [pool.submit(run_variant, name, overrides, steps, args.val_every or steps,
                               Path(args.runs), args.experiment, seed, args.threads)
                   for name, overrides, steps, seed in jobs]
        for fut in concurrent.futures.as_completed(futures):
            row = fut.result()
            rows.append(row)
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(rows, indent=1))
            print(table([row]).splitlines()[-1], flush=True)
    rows.sort(key=lambda r: (r["steps"], r["variant"], r["seed"]))
    print(table(rows))


if __name__ == "__main__":
    main()

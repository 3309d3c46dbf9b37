"""Data-layer benchmark: brainfm vs braindecode, preparation and loading, side by side.

Every measurement runs in a fresh process (medians over ``--repeats``), both libraries under
the same environment (glibc malloc settings included). Preparation is timed from reading the
files to windows ready for training, with the same work on both sides: pick EEG, 0.3-75 Hz
band-pass, 50 Hz notch, resample to 200 Hz, scale to units of 100 uV, 5 s windows (fixed for
eegmat, event-locked for ssvep_exoskeleton). braindecode keeps its windows lazily in memory
(its default); brainfm writes a float16 corpus store to disk, which its time includes.
Loading is one epoch through a torch DataLoader at batch 64 with 0 and 2 workers.

    python benchmarks/prep.py                    # prints the tables
    python benchmarks/prep.py --write            # also updates docs/performance.md

braindecode runs from its own environment (``make bench-env``), given by ``--bd-python``.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import this folder as the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import ROOT, median, peak_rss_mb, run_child  # noqa: E402

HERE = ROOT / "benchmarks"
DATASETS = {"eegmat": "eegmat", "ssvep": "ssvep_exoskeleton"}   # braindecode name -> brainfm


# ---- child processes: one measurement each --------------------------------------------------
def child_prep(dataset: str, store_root: str, limit: int | None, n_jobs: int) -> dict:
    from brainfm.configuration import compose_config, prep_configs
    from brainfm.data.prep import prepare
    from brainfm.paths import data_root

    spec, std = prep_configs(compose_config([f"dataset={dataset}"]))
    t0 = time.perf_counter()
    summary = prepare(spec, std, data_root(), Path(store_root) / dataset, overwrite=True,
                      limit=limit, progress=False, n_jobs=n_jobs)
    seconds = time.perf_counter() - t0
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    return {"seconds": seconds, "hours": summary.hours, "windows": summary.windows,
            "recordings": summary.done, "peak_rss_mb": max(peak_rss_mb(), workers)}


def child_load(dataset: str, store_root: str, workers: int, epochs: int) -> dict:
    import torch

    from brainfm.data.datamodule import BrainDataModule

    dm = BrainDataModule([dataset], store_root=store_root, batch_size=64, num_workers=workers,
                         val_fraction=0.0, seed=0)
    dm.setup()
    loader = dm.train_dataloader()
    t0 = time.perf_counter()
    n = sum(batch["x"].shape[0] for batch in loader)
    first = time.perf_counter() - t0
    t1, more = time.perf_counter(), 0
    for epoch in range(1, epochs):
        loader.sampler.set_epoch(epoch)
        more += sum(batch["x"].shape[0] for batch in loader)
    steady = more / (time.perf_counter() - t1) if more else None
    return {"windows": n, "seconds": first, "windows_per_s": n / first,
            "steady_windows_per_s": steady, "peak_rss_mb": peak_rss_mb()}


# ---- parent: run children, take medians -----------------------------------------------------
def _run(cmd: list[str]) -> dict:
    """One child's result, braindecode's in brainfm's field names."""
    res = run_child(cmd)
    if res.get("side") == "braindecode":  # its field names -> ours
        res.update(seconds=res["prep_wall_s"], hours=res["hours_recorded"],
                   peak_rss_mb=res["peak_rss_mib"] * 1.048576)
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--bd-python", default=str(ROOT / ".bench" / "bd-venv" / "bin" / "python"))
    p.add_argument("--write", action="store_true", help="update docs/performance.md")
    p.add_argument("--child", choices=["prep", "load"])
    p.add_argument("--dataset")
    p.add_argument("--store-root")
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--limit", type=int)
    p.add_argument("--n-jobs", type=int, default=1)
    p.add_argument("--epochs", type=int, default=6,
                   help="loading epochs; those after the first give the steady rate")
    args = p.parse_args(argv)
    if args.child == "prep":
        print(json.dumps(child_prep(args.dataset, args.store_root, args.limit, args.n_jobs)))
        return 0
    if args.child == "load":
        print(json.dumps(child_load(args.dataset, args.store_root, args.workers, args.epochs)))
        return 0

    from brainfm.paths import data_root

    me = [sys.executable, str(Path(__file__).resolve())]
    bd = [args.bd_python, str(HERE / "braindecode_side.py"), "--data-root", str(data_root())]
    have_bd = Path(args.bd_python).exists()
    if not have_bd:
        print(f"braindecode environment not found at {args.bd_python}; run `make bench-env`",
              file=sys.stderr)
    results: dict = {"env": {"MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX"),
                             "cpus": os.cpu_count(), "repeats": args.repeats}}
    with tempfile.TemporaryDirectory() as tmp:
        for bd_name, name in DATASETS.items():
            row: dict = {}
            for n_jobs in (1, 2):
                runs = [_run(me + ["--child", "prep", "--dataset", name, "--store-root", tmp,
                                   "--n-jobs", str(n_jobs)]) for _ in range(args.repeats)]
                row["brainfm_prep" if n_jobs == 1 else "brainfm_prep_j2"] = _summarise_prep(runs)
            if have_bd:
                bd_runs = [_run(bd + ["--task", "prep", "--dataset", bd_name])
                           for _ in range(args.repeats)]
                row["braindecode_prep"] = _summarise_prep(bd_runs)
            for workers in (0, 2):
                runs = [_run(me + ["--child", "load", "--dataset", name, "--store-root", tmp,
                                   "--workers", str(workers), "--epochs", str(args.epochs)])
                        for _ in range(args.repeats)]
                row[f"brainfm_load_w{workers}"] = _summarise_load(runs)
                if have_bd:
                    runs = [_run(bd + ["--task", "load", "--dataset", bd_name, "--workers",
                                       str(workers), "--epochs", str(args.epochs)])
                            for _ in range(args.repeats)]
                    row[f"braindecode_load_w{workers}"] = _summarise_load(runs)
            results[name] = row
        growth = {}  # one process, so the figure is the whole job's
        for limit in (18, 36, 72):
            runs = [_run(me + ["--child", "prep", "--dataset", "eegmat", "--store-root", tmp,
                               "--limit", str(limit)]) for _ in range(args.repeats)]
            growth[limit] = median(runs, "peak_rss_mb")
        results["memory_vs_recordings"] = growth
    text = render(results)
    print(text)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "prep.json").write_text(json.dumps(results, indent=1))
    if args.write:
        from benchmarks.docs_blocks import write

        write()
    return 0


def _summarise_load(runs: list[dict]) -> dict:
    return {"windows_per_s": median(runs, "windows_per_s"), "windows": runs[0]["windows"],
            "steady_windows_per_s": median(runs, "steady_windows_per_s")}


def _summarise_prep(runs: list[dict]) -> dict:
    return {"seconds": median(runs, "seconds"), "hours": runs[0]["hours"],
            "windows": runs[0]["windows"], "peak_rss_mb": median(runs, "peak_rss_mb"),
            "hours_per_s": statistics.median(r["hours"] / r["seconds"] for r in runs)}


def render(res: dict) -> str:
    """Markdown: a preparation table, a loading table, and the brainfm/braindecode ratios."""
    reps = res["env"]["repeats"]
    prep = ["| dataset | library | recordings' hours | windows | prep s | hours / s |"
            " peak RSS MB |", "|---|---|---|---|---|---|---|"]
    load = ["| dataset | library | 0 workers: 1st epoch | 0 workers: steady |"
            " 2 workers: 1st epoch | 2 workers: steady |", "|---|---|---|---|---|---|"]
    ratios = []
    for name in DATASETS.values():
        row = res[name]
        for key, label in (("brainfm_prep", "brainfm, 1 process"),
                           ("brainfm_prep_j2", "brainfm, 2 processes (n_jobs=-1)"),
                           ("braindecode_prep", "braindecode, n_jobs=1 (its fastest here)")):
            p = row.get(key)
            if p:
                prep.append(f"| {name} | {label} | {p['hours']:.2f} | {p['windows']} | "
                            f"{p['seconds']:.2f} | {p['hours_per_s']:.3f} | "
                            f"{p['peak_rss_mb']:.0f} |")
        for lib in ("brainfm", "braindecode"):
            if f"{lib}_load_w0" not in row:
                continue
            cells = []
            for w in (0, 2):
                ld = row[f"{lib}_load_w{w}"]
                cells += [f"{ld['windows_per_s']:,.0f}", f"{ld['steady_windows_per_s']:,.0f}"]
            load.append(f"| {name} | {lib} | " + " | ".join(cells) + " |")
        if "braindecode_prep" in row:
            def r(key, field="steady_windows_per_s"):
                return row[f"brainfm_{key}"][field] / row[f"braindecode_{key}"][field]
            ratios.append(
                f"- {name}: preparation {r('prep', 'hours_per_s'):.1f}x in one process, "
                f"{row['brainfm_prep_j2']['hours_per_s'] / row['braindecode_prep']['hours_per_s']:.1f}x"
                f" with brainfm's default 2 processes; loading (steady) "
                f"{r('load_w0'):.1f}x with 0 workers and {r('load_w2'):.1f}x with 2 workers "
                f"(first epoch {r('load_w0', 'windows_per_s'):.1f}x / "
                f"{r('load_w2', 'windows_per_s'):.1f}x), peak memory "
                f"{row['brainfm_prep']['peak_rss_mb'] / row['braindecode_prep']['peak_rss_mb']:.2f}x")
    growth = res["memory_vs_recordings"]
    return "\n".join([
        f"Medians of {reps} fresh processes per cell; MALLOC_ARENA_MAX="
        f"{res['env']['MALLOC_ARENA_MAX']} for both libraries; {res['env']['cpus']} CPUs.",
        "", "Preparation (read -> standardise -> windows; brainfm also writes its float16 store):",
        "", *prep, "", "Loading, windows/s at batch 64 (steady = epochs 2 onwards, persistent "
        "workers):", "", *load, "", "brainfm / braindecode:", "", *ratios, "",
        "brainfm-prep peak RSS vs recordings prepared (eegmat): " + ", ".join(
            f"{k} recordings {v:.0f} MB" for k, v in growth.items())])


if __name__ == "__main__":
    sys.exit(main())

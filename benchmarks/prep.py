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
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATASETS = {"eegmat": "eegmat", "ssvep": "ssvep_exoskeleton"}   # braindecode name -> brainfm


# ---- child processes: one measurement each --------------------------------------------------
def child_prep(dataset: str, store_root: str, limit: int | None) -> dict:
    from brainfm.cli import compose_config, prep_configs
    from brainfm.data.prep import prepare
    from brainfm.paths import data_root

    spec, std = prep_configs(compose_config([f"dataset={dataset}"]))
    t0 = time.perf_counter()
    summary = prepare(spec, std, data_root(), Path(store_root) / dataset, overwrite=True,
                      limit=limit, progress=False)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "hours": summary.hours, "windows": summary.windows,
            "recordings": summary.done, "peak_rss_mb": _peak_rss_mb()}


def child_load(dataset: str, store_root: str, workers: int) -> dict:
    import torch

    from brainfm.data.loading import BucketBatchSampler, WindowDataset, collate_windows

    ds = WindowDataset([Path(store_root) / dataset])
    sampler = BucketBatchSampler(ds.shape_keys(), 64, shuffle=True, seed=0)
    loader = torch.utils.data.DataLoader(ds, batch_sampler=sampler, collate_fn=collate_windows,
                                         num_workers=workers)
    t0 = time.perf_counter()
    n = 0
    for batch in loader:
        n += batch["x"].shape[0]
    seconds = time.perf_counter() - t0
    return {"windows": n, "seconds": seconds, "windows_per_s": n / seconds,
            "peak_rss_mb": _peak_rss_mb()}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ---- parent: run children, take medians -----------------------------------------------------
def _run(cmd: list[str]) -> dict:
    out = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    if out.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


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
    args = p.parse_args(argv)
    if args.child == "prep":
        print(json.dumps(child_prep(args.dataset, args.store_root, args.limit)))
        return 0
    if args.child == "load":
        print(json.dumps(child_load(args.dataset, args.store_root, args.workers)))
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
            prep_runs = [_run(me + ["--child", "prep", "--dataset", name, "--store-root", tmp])
                         for _ in range(args.repeats)]
            row["brainfm_prep"] = _summarise_prep(prep_runs)
            if have_bd:
                bd_runs = [_run(bd + ["--task", "prep", "--dataset", bd_name])
                           for _ in range(args.repeats)]
                row["braindecode_prep"] = _summarise_prep(bd_runs)
            for workers in (0, 2):
                runs = [_run(me + ["--child", "load", "--dataset", name, "--store-root", tmp,
                                   "--workers", str(workers)]) for _ in range(args.repeats)]
                row[f"brainfm_load_w{workers}"] = {
                    "windows_per_s": _median(runs, "windows_per_s"),
                    "windows": runs[0]["windows"]}
                if have_bd:
                    runs = [_run(bd + ["--task", "load", "--dataset", bd_name, "--workers",
                                       str(workers)]) for _ in range(args.repeats)]
                    row[f"braindecode_load_w{workers}"] = {
                        "windows_per_s": _median(runs, "windows_per_s"),
                        "windows": runs[0]["windows"]}
            results[name] = row
        growth = {}
        for limit in (18, 36, 72):
            runs = [_run(me + ["--child", "prep", "--dataset", "eegmat", "--store-root", tmp,
                               "--limit", str(limit)]) for _ in range(args.repeats)]
            growth[limit] = _median(runs, "peak_rss_mb")
        results["memory_vs_recordings"] = growth
    text = render(results)
    print(text)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "prep.json").write_text(json.dumps(results, indent=1))
    if args.write:
        _write_section(ROOT / "docs" / "performance.md", "prep", text)
    return 0


def _summarise_prep(runs: list[dict]) -> dict:
    return {"seconds": _median(runs, "seconds"), "hours": runs[0]["hours"],
            "windows": runs[0]["windows"], "peak_rss_mb": _median(runs, "peak_rss_mb"),
            "hours_per_s": statistics.median(r["hours"] / r["seconds"] for r in runs)}


def render(res: dict) -> str:
    lines = ["| dataset | library | windows | hours | prep s | hours / s | peak RSS MB |"
             " load w/s (0 workers) | load w/s (2 workers) |",
             "|---|---|---|---|---|---|---|---|---|"]
    ratios = []
    for name in DATASETS.values():
        row = res[name]
        for lib in ("brainfm", "braindecode"):
            prep = row.get(f"{lib}_prep")
            if not prep:
                continue
            l0, l2 = row.get(f"{lib}_load_w0", {}), row.get(f"{lib}_load_w2", {})
            lines.append(f"| {name} | {lib} | {prep['windows']} | {prep['hours']:.2f} | "
                         f"{prep['seconds']:.2f} | {prep['hours_per_s']:.3f} | "
                         f"{prep['peak_rss_mb']:.0f} | {l0.get('windows_per_s', 0):,.0f} | "
                         f"{l2.get('windows_per_s', 0):,.0f} |")
        if "braindecode_prep" in row:
            ratios.append(
                f"- {name}: preparation {row['brainfm_prep']['hours_per_s'] / row['braindecode_prep']['hours_per_s']:.1f}x, "
                f"loading {row['brainfm_load_w0']['windows_per_s'] / row['braindecode_load_w0']['windows_per_s']:.1f}x "
                f"(0 workers) and {row['brainfm_load_w2']['windows_per_s'] / row['braindecode_load_w2']['windows_per_s']:.1f}x "
                f"(2 workers), peak memory {row['brainfm_prep']['peak_rss_mb'] / row['braindecode_prep']['peak_rss_mb']:.2f}x")
    growth = res["memory_vs_recordings"]
    lines += ["", "brainfm / braindecode (medians of "
              f"{res['env']['repeats']} processes each, MALLOC_ARENA_MAX="
              f"{res['env']['MALLOC_ARENA_MAX']}, {res['env']['cpus']} CPUs):", *ratios, "",
              "brainfm-prep peak RSS vs recordings prepared (eegmat): " + ", ".join(
                  f"{k} recordings {v:.0f} MB" for k, v in growth.items())]
    return "\n".join(lines)


def _write_section(path: Path, name: str, text: str) -> None:
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    doc = path.read_text() if path.exists() else ""
    block = f"{begin}\n{text}\n{end}"
    if begin in doc and end in doc:
        doc = doc[:doc.index(begin)] + block + doc[doc.index(end) + len(end):]
    else:
        doc += ("\n" if doc else "") + block + "\n"
    path.write_text(doc)


if __name__ == "__main__":
    sys.exit(main())

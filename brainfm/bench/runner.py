"""brainfm-bench: datasets x pipelines x protocols x seeds -> resumable cells -> tables, plots.

Each cell (one fold of one pipeline on one dataset under one protocol and seed) is keyed by
the hash of everything that determines it; a finished cell is read back, never recomputed.
Metrics are computed per test subject and pooled per fold, into one tidy table; datasets
without subject ids (the epilepsy segments) are scored per fold only, since a test recording
of one class is no unit to score.
"""
from __future__ import annotations

import time
from pathlib import Path

from ..configuration import drop_null_entries
from .cells import plan_cells
from .executor import ExecutorSettings, run_jobs
from .jobs import cell_jobs
from .report import markdown, plots
from .results import ResultsStore


def run_benchmark(experiment: dict, store_root, out_dir, progress: bool = True,
                  report_dir=None) -> dict:
    """Run (or resume) an experiment: cells go to ``out_dir/cells`` (shared by re-runs and
    sweeps); results.csv, summary.md and plots of this experiment's cells go to
    ``report_dir`` (default ``out_dir``).

    ``experiment``: ``datasets`` (names of corpus stores), ``pipelines`` (name -> spec, see
    :func:`brainfm.bench.pipelines.make_pipeline`, plus optional ``datasets``), ``protocols``
    (dataset name or ``default`` -> protocol spec), ``seeds``, optional ``max_folds`` (quick
    variants) and ``allow_pretraining_overlap`` (default false).
    """
    from ..validate import bench_problems, raise_problems
    experiment = drop_null_entries(experiment)
    raise_problems("run_benchmark", bench_problems(experiment, store_root))
    out_dir = Path(out_dir)
    report_dir = Path(report_dir or out_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    store = ResultsStore(out_dir)
    cache_dir = Path(experiment.get("cache_dir") or out_dir / "features")
    t0 = time.perf_counter()
    cells = plan_cells(experiment, store_root, store)
    keys = [cell.key for cell in cells]
    missing = [cell for cell in cells if not store.has(cell.key, cell.config, cell.subjects)]
    settings = ExecutorSettings.from_config(experiment.get("executor"))
    jobs = cell_jobs(missing, settings.cells_per_job(len(missing)), store_root=store_root,
                     results_dir=out_dir, cache_dir=cache_dir,
                     threads=None if settings.name == "serial" else settings.threads_per_worker)
    run_jobs(jobs, settings, settings.folder or report_dir / "jobs", progress=progress)
    computed = sum(store.has(cell.key, cell.config, cell.subjects) for cell in missing)
    skipped = len(cells) - len(missing)
    table, cells = store.frames(keys)
    table.to_csv(report_dir / "results.csv", index=False)
    text = markdown(table, cells)
    (report_dir / "summary.md").write_text(text + "\n")
    figures = plots(table, report_dir) if not table.empty else []
    return {"computed": computed, "skipped": skipped, "seconds": time.perf_counter() - t0,
            "rows": len(table), "summary": text, "figures": [str(f) for f in figures],
            "report_dir": str(report_dir),
            "set_aside": [(str(cell), str(dest)) for cell, dest in store.set_aside]}

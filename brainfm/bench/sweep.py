"""Several brainfm-pretrain runs side by side, through the executor the benchmark uses.

A transfer verdict needs many pretraining runs (leave-dataset-out, seeds); each is a
:class:`~brainfm.bench.jobs.PretrainJob`. The parent composes every run's config first (a bad
override fails here, not in a queued job) and prepares the stores they read, so the jobs only
read stores. A run whose model file exists is not started again.

    from brainfm.bench.sweep import pretrain_sweep
    pretrain_sweep({f"runs/seed{s}.pt": ["experiment=pretrain_quick", f"seed={s}",
                                         f"output_dir=runs/seed{s}"] for s in range(3)},
                   executor={"name": "local", "workers": 3}, folder="runs/jobs")
"""
from __future__ import annotations

from pathlib import Path

from .executor import ExecutorSettings, run_jobs


def pretrain_sweep(runs: dict, executor: dict | None = None, folder=None,
                   estimates: dict | None = None, progress: bool = True) -> dict[str, str]:
    """Run the missing ones of ``runs`` (model file destination -> brainfm-pretrain overrides)
    and return destination -> model file. ``executor``: a ``conf/executor`` config (default
    serial); ``folder``: the jobs' logs unless ``executor.folder`` says (default beside
    the first destination);
    ``estimates``: destination -> expected seconds (longest first; default all equal)."""
    from ..configuration import compose_config
    from ..pretrain_run import ensure_stores
    from .jobs import PretrainJob

    settings = ExecutorSettings.from_config(executor)
    threads = None if settings.name == "serial" else settings.threads_per_worker
    jobs = []
    for destination, overrides in runs.items():
        if Path(destination).exists():
            continue
        cfg = compose_config(list(overrides), config_name="pretrain")
        ensure_stores(list(cfg.data.datasets), Path(cfg.store_root), cfg.data_root,
                      view=cfg.data.get("view"))
        jobs.append(PretrainJob(overrides, destination, (estimates or {}).get(destination, 1.0),
                                threads))
    if jobs:
        folder = settings.folder or folder or Path(next(iter(runs))).parent / "jobs"
        run_jobs(jobs, settings, folder, desc="pretraining runs", progress=progress,
                 unit="run")
    return {str(d): str(d) for d in runs}

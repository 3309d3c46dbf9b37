"""Several brainfm-pretrain runs side by side, through the executor the benchmark uses.

A transfer verdict needs many pretraining runs (leave-dataset-out, seeds); each is a
:class:`~brainfm.bench.jobs.PretrainJob`. The parent composes every run's config first (a bad
override fails here, not in a queued job) and prepares the stores they read, so the jobs only
read stores. A run whose checkpoint folder exists is not started again.

    from brainfm.bench.sweep import pretrain_sweep
    pretrain_sweep({f"runs/seed{s}_checkpoint": ["experiment=pretrain_quick", f"seed={s}",
                                                 f"output_dir=runs/seed{s}"]
                    for s in range(3)},
                   executor={"name": "local", "workers": 3}, folder="runs/jobs")
"""
from __future__ import annotations

from pathlib import Path

from ..configuration import compose_config
from ..pretrain_run import ensure_stores
from .executor import ExecutorSettings, run_jobs
from .jobs import PretrainJob
from .pretrained import checkpoint_for, pretraining_corpus


def pretrain_sweep(runs: dict, executor: dict | None = None, folder=None,
                   estimates: dict | None = None, progress: bool = True) -> dict[str, str]:
    """Run the missing ones of ``runs`` (checkpoint folder destination -> brainfm-pretrain
    overrides) and return destination -> checkpoint folder. ``executor``: a ``conf/executor`` config (default
    serial); ``folder``: the jobs' logs unless ``executor.folder`` says (default beside
    the first destination);
    ``estimates``: destination -> expected seconds (longest first; default all equal)."""
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


def ensure_pretrained(spec: dict, datasets, store_root, data_root=None,
                      executor: dict | None = None, folder=None) -> dict[str, str]:
    """Pretrain what is missing, once, before any benchmark cell (through ``executor``, a
    ``conf/executor`` config, side by side where it runs jobs in parallel); returns evaluated
    dataset -> checkpoint path."""
    paths, runs = {}, {}
    for dataset in datasets:
        path = Path(checkpoint_for(spec["path"], dataset))
        paths[dataset] = str(path)
        if path.exists():
            continue
        corpus = pretraining_corpus(spec, dataset)
        run_dir = path.parent / f"{path.stem}_run"
        overrides = [f"experiment={spec['experiment']}", f"data.datasets=[{','.join(corpus)}]",
                     f"store_root={store_root}", f"output_dir={run_dir}",
                     *(spec.get("overrides") or [])]
        if data_root:
            overrides.append(f"data_root={data_root}")
        print(f"brainfm-bench: pretraining {path} on {', '.join(corpus)} "
              f"(brainfm-pretrain {' '.join(overrides)}); a progress line every 30 s",
              flush=True)
        runs[str(path)] = overrides
    if runs:
        pretrain_sweep(runs, executor, folder, progress=False)
    return paths



"""The jobs an executor runs: a group of benchmark cells, or one pretraining run.

Each job is a small picklable object (submitit sends it to another process or node), writes
its output atomically where the parent looks for it, and skips what is already there; so a
job re-queued after pre-emption (submitit calls ``checkpoint`` on USR1 and submits the same
job again) recomputes only the cell it was in, and a killed job leaves nothing half-written.
"""
from __future__ import annotations

import math
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from ..configuration import compose_config
from ..formats import RUN_CHECKPOINT
from ..pretrain_run import run_pretrain
from ..run_folder import run_outputs
from .cells import Cell, CellComputer


@contextmanager
def thread_limit(threads: int | None):
    """At most ``threads`` torch and BLAS/OpenMP threads inside (None: leave them), so that
    ``workers`` jobs on one machine do not oversubscribe its cores."""
    if threads is None:
        yield
        return
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        with threadpool_limits(int(threads)):
            yield
    finally:
        torch.set_num_threads(before)


class _Requeueable:
    def checkpoint(self, *args, **kwargs):
        """submitit's pre-emption hook: submit the same job again; finished work is on disk."""
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self, *args, **kwargs)


class CellJob(_Requeueable):
    """Compute some cells of a benchmark into its results store."""

    def __init__(self, cells: list[Cell], store_root, results_dir, cache_dir,
                 threads: int | None = None):
        self.cells, self.threads = list(cells), threads
        self.store_root, self.results_dir, self.cache_dir = (
            str(store_root), str(results_dir), str(cache_dir))
        self.estimate_s = sum(c.estimate_s for c in self.cells)
        self.units = len(self.cells)
        first = self.cells[0].label
        self.name = first if self.units == 1 else f"{first} and {self.units - 1} more cells"

    def units_done(self) -> int:
        cells = Path(self.results_dir) / "cells"
        return sum((cells / f"{c.key}.json").exists() for c in self.cells)

    def __call__(self, on_unit=None) -> int:
        """Number of cells computed (the others were stored already)."""
        computed = 0
        with thread_limit(self.threads):
            computer = CellComputer(self.store_root, self.results_dir, self.cache_dir)
            for cell in self.cells:
                computed += computer.compute(cell)
                if on_unit is not None:
                    on_unit()
        return computed


def cell_jobs(cells: list[Cell], job_size: int, **job_kwargs) -> list[CellJob]:
    """``cells`` in jobs of at most ``job_size``, balanced by estimated time: longest cell
    first, each to the job with the least work so far (within a job, cells keep their plan
    order, so cells of one dataset and pipeline share windows and features)."""
    if not cells:
        return []
    n_jobs = math.ceil(len(cells) / max(1, int(job_size)))
    loads, members = [0.0] * n_jobs, [[] for _ in range(n_jobs)]
    order = sorted(range(len(cells)), key=lambda i: -cells[i].estimate_s)
    for i in order:
        room = [j for j in range(n_jobs) if len(members[j]) < job_size]
        j = min(room, key=lambda j: loads[j])
        loads[j] += cells[i].estimate_s
        members[j].append(i)
    return [CellJob([cells[i] for i in sorted(m)], **job_kwargs) for m in members]


def resume_overrides(run_dir: Path) -> list[str]:
    """Overrides for a pretraining run's own folder: resume a run killed midway (its
    last.ckpt), start over where a run finished but its checkpoint was not copied out."""
    last = run_dir / "checkpoints" / "last.ckpt"
    if not run_outputs(run_dir):
        return []
    if last.is_file() and not (run_dir / "result.json").is_file():
        return [f"resume={last}"]
    return ["overwrite=true"]


def copy_checkpoint(folder: Path, destination: Path) -> None:
    """Copy a run's checkpoint folder to ``destination`` in one step (a copy beside it,
    then renamed): the destination exists only whole."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", suffix=".partial",
                                dir=destination.parent))
    try:
        shutil.copytree(folder, tmp / "copy")
        os.replace(tmp / "copy", destination)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class PretrainJob(_Requeueable):
    """One brainfm-pretrain run (its Hydra overrides); its checkpoint folder is copied to
    ``destination`` when it ends, so a finished run is not repeated."""

    units = 1

    def __init__(self, overrides: list[str], destination, estimate_s: float = 1.0,
                 threads: int | None = None):
        self.overrides, self.destination = list(overrides), str(destination)
        self.estimate_s, self.threads = estimate_s, threads
        self.name = f"pretrain {destination}"

    def units_done(self) -> int:
        return int(Path(self.destination).exists())

    def __call__(self, on_unit=None) -> str:
        if not Path(self.destination).exists():
            # a run killed midway (or re-queued after pre-emption) resumes from its last.ckpt
            output_dir = compose_config(self.overrides, config_name="pretrain").output_dir
            again = resume_overrides(Path(output_dir))
            if again:   # say what happens to the folder, as brainfm-pretrain would be told
                print(f"brainfm-bench: {output_dir} holds an earlier run of this checkpoint: "
                      f"continuing it with {' '.join(again)}", flush=True)
            overrides = [*self.overrides, *again]
            with thread_limit(self.threads):
                result = run_pretrain(compose_config(overrides, config_name="pretrain"))
            copy_checkpoint(Path(result["output_dir"]) / RUN_CHECKPOINT, Path(self.destination))
        if on_unit is not None:
            on_unit()
        return self.destination

"""Where benchmark cells and pretraining runs are computed: here, in local processes, or on SLURM.

``executor=serial`` (the default) computes every job in this process, one after another.
``executor=local`` and ``executor=slurm`` hand the jobs to submitit, a maintained engine for
exactly this (pickled Python callables as local processes or SLURM array jobs, their logs,
states, time limits and re-queueing on pre-emption), so brainfm keeps no scheduler of its own:
this module only orders the jobs, keeps ``workers`` local processes busy, shows progress and
names the jobs that failed. submitit is imported only when one of those is chosen.

A job is a callable object (``job(on_unit=None)``; ``on_unit`` is called after each unit when
the job runs in this process) with ``name``, ``estimate_s``, ``units`` and ``units_done()``
(how much of it is visibly finished, read by the parent from the files the job writes) and a
``checkpoint`` method: on SLURM pre-emption or time-out submitit calls it and re-queues the
job, which then skips whatever it had finished (:mod:`brainfm.bench.jobs`).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

from ..errors import BrainfmError

EXECUTORS = ("serial", "local", "slurm")


@dataclass
class ExecutorSettings:
    """``conf/executor/*.yaml``; the SLURM fields are submitit's ``slurm_*`` parameters."""
    name: str = "serial"
    job_size: int | None = None     # cells per job; None: all (serial), 2 jobs per worker (local)
    workers: int = 2                # local: jobs running at once
    threads_per_worker: int = 1     # torch / BLAS threads in each job
    folder: str | None = None       # job scripts and logs; default <report_dir>/jobs
    timeout_min: int = 24 * 60      # per job (local and SLURM)
    poll_s: float = 2.0             # how often the parent looks at its jobs
    partition: str | None = None
    gpus_per_node: int = 0
    cpus_per_task: int | None = None  # default: threads_per_worker
    mem_gb: float | None = None
    array_parallelism: int = 64     # SLURM array jobs running at once
    signal_delay_s: int = 90        # pre-emption signal this long before the kill: --signal=USR2@90
    max_requeues: int = 3           # pre-emptions / time-outs a job survives
    setup: list = field(default_factory=list)        # shell lines before the job (module load ...)
    additional: dict = field(default_factory=dict)   # any other sbatch option, e.g. {account: x}

    @classmethod
    def from_config(cls, config: dict | None) -> "ExecutorSettings":
        config = dict(config or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise BrainfmError(f"executor: unknown setting(s) {unknown}; known: {sorted(known)}")
        settings = cls(**config)
        if settings.name not in EXECUTORS:
            raise BrainfmError(f"executor.name={settings.name!r}; use executor=serial, "
                               "executor=local or executor=slurm")
        for name in ("job_size", "workers", "threads_per_worker", "array_parallelism"):
            if getattr(settings, name) is not None and int(getattr(settings, name)) < 1:
                raise BrainfmError(f"executor.{name}={getattr(settings, name)}: must be >= 1")
        return settings

    def cells_per_job(self, n_cells: int) -> int:
        """Serial: one job (windows and features loaded once); otherwise ``job_size``, or by
        default two jobs per local worker (each process start costs seconds of imports),
        one per SLURM array slot."""
        if self.name == "serial":
            return max(1, n_cells)
        if self.job_size:
            return int(self.job_size)
        slots = 2 * self.workers if self.name == "local" else self.array_parallelism
        return max(1, math.ceil(n_cells / slots))


class JobsFailed(BrainfmError):
    """Some jobs failed; what they finished is stored, a re-run computes only the rest."""


def longest_first(jobs: list) -> list:
    """Jobs in the order they start: the longest first, so the last to finish is a short one
    (with ``workers`` processes, the greedy longest-first order finishes within 4/3 of the
    best possible schedule)."""
    return sorted(jobs, key=lambda job: -job.estimate_s)


def make_submitit_executor(settings: ExecutorSettings, folder: Path):
    """A submitit executor for ``settings`` (local or slurm), its jobs' files in ``folder``."""
    try:
        import submitit
    except ImportError as err:
        raise BrainfmError(f"executor={settings.name} runs its jobs through submitit, which is "
                           "not installed: pip install 'brainfm[cluster]' (or use "
                           "executor=serial)") from err
    if settings.name == "local":
        executor = submitit.LocalExecutor(folder=folder, max_num_timeout=settings.max_requeues)
        executor.update_parameters(timeout_min=settings.timeout_min,
                                   signal_delay_s=settings.signal_delay_s)
        return executor
    executor = submitit.SlurmExecutor(folder=folder, max_num_timeout=settings.max_requeues)
    executor.update_parameters(
        time=settings.timeout_min, partition=settings.partition,
        gpus_per_node=settings.gpus_per_node or None,
        cpus_per_task=settings.cpus_per_task or settings.threads_per_worker,
        mem=f"{settings.mem_gb:g}GB" if settings.mem_gb else None,
        array_parallelism=settings.array_parallelism, signal_delay_s=settings.signal_delay_s,
        setup=list(settings.setup), additional_parameters=dict(settings.additional) or None,
        ntasks_per_node=1)
    return executor


def submit_all(executor, jobs: list) -> list:
    """Submit ``jobs`` at once (on SLURM: one job array, ``array_parallelism`` at a time)."""
    with executor.batch():
        handles = [executor.submit(job) for job in jobs]
    return handles


def _failure(job, handle) -> str | None:
    """Why a finished job failed, with its log file; None when it succeeded."""
    try:
        error = handle.exception()
    except Exception as err:  # noqa: BLE001 - the job's files are unreadable: say so
        error = err
    if error is None:
        return None
    last = str(error).strip().splitlines()[-1:] or [type(error).__name__]
    return f"{job.name}: {last[0]} (log: {handle.paths.stderr})"


class _Progress:
    """One line the parent keeps up to date: units done, jobs running and failed, time left
    (from the jobs' estimates, scaled by how long the finished share actually took)."""

    def __init__(self, jobs: list, desc: str, enabled: bool, unit: str):
        from ..progress import progress_bar

        self.jobs, self.t0 = jobs, time.perf_counter()
        self.total = sum(j.units for j in jobs)
        self.bar = progress_bar(self.total, desc, enabled, unit=unit)
        self.shown, self.text = 0, ""

    def update(self, running: int, failed: int) -> None:
        done_units = {id(j): j.units_done() for j in self.jobs}
        done = sum(done_units.values())
        est_done = sum(j.estimate_s * done_units[id(j)] / j.units for j in self.jobs)
        est_left = sum(j.estimate_s for j in self.jobs) - est_done
        minutes = (time.perf_counter() - self.t0) * est_left / est_done / 60 if est_done else None
        left = ("time left: ?" if minutes is None else
                "under 1 min left" if minutes < 1 else f"~{minutes:.0f} min left")
        text = f"{running} jobs running, {failed} failed, {left}"
        if text != self.text and hasattr(self.bar, "set_postfix_str"):
            self.bar.set_postfix_str(text, refresh=done == self.shown)
            self.text = text
        self.bar.update(done - self.shown)
        self.shown = done

    def advance(self) -> None:
        """One more unit done here, in this process (the serial executor)."""
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def run_jobs(jobs: list, settings: ExecutorSettings, folder, desc: str = "cells",
             progress: bool = True, unit: str = "cell") -> None:
    """Run ``jobs`` where ``settings`` says and wait for all of them; raises
    :class:`JobsFailed` naming each failed job and its log once every job has ended."""
    jobs = longest_first(jobs)
    if settings.name == "serial":   # errors stop the run, with their traceback, as they arise
        view = _Progress(jobs, desc, progress, unit)
        for job in jobs:
            job(on_unit=view.advance)
        view.close()
        return
    folder = Path(folder)
    executor = make_submitit_executor(settings, folder)
    view = _Progress(jobs, f"{desc} ({settings.name}, logs in {folder})", progress, unit)
    capacity = settings.workers if settings.name == "local" else len(jobs)
    waiting, running, failures = list(jobs), [], []
    if settings.name == "slurm":
        running = list(zip(jobs, submit_all(executor, jobs)))
        waiting = []
    try:
        while waiting or running:
            while waiting and len(running) < capacity:
                job = waiting.pop(0)
                running.append((job, executor.submit(job)))
            still = []
            for job, handle in running:
                if not handle.done():
                    still.append((job, handle))
                elif (why := _failure(job, handle)) is not None:
                    failures.append(why)
            running = still
            view.update(len(running), len(failures))
            if waiting or running:
                time.sleep(settings.poll_s)
    except KeyboardInterrupt:
        for _, handle in running:
            handle.cancel(check=False)
        raise
    finally:
        view.close()
    if failures:
        raise JobsFailed(f"{len(failures)} of {len(jobs)} jobs failed; what the others "
                         "computed is stored, so re-running the same command computes only "
                         "the missing part:\n  " + "\n  ".join(failures))

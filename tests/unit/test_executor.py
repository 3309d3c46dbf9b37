"""Executor settings, how cells become jobs, and the SLURM job array submitit writes (checked
up to submission: a stand-in ``sbatch`` on PATH records the script instead of queueing it)."""
import os
import stat
import subprocess
import sys

import pytest

from brainfm.bench.cells import Cell
from brainfm.bench.executor import ExecutorSettings, longest_first, submit_all
from brainfm.bench.jobs import CellJob, cell_jobs
from brainfm.errors import BrainfmError


def _cells(estimates):
    return [Cell(f"k{i}", {"dataset": "d", "pipeline": f"p{i}", "seed": 0, "fold": "f"}, e)
            for i, e in enumerate(estimates)]


def test_cells_are_balanced_over_jobs_longest_first():
    cells = _cells([1, 9, 2, 8, 3, 7])
    jobs = cell_jobs(cells, 2, store_root="s", results_dir="r", cache_dir="c")
    assert sorted(j.estimate_s for j in jobs) == [10, 10, 10]   # 9+1, 8+2, 7+3
    assert all(j.units == 2 for j in jobs)
    for job in jobs:   # within a job, the plan's order (cells of a pipeline together)
        assert [c.key for c in job.cells] == sorted((c.key for c in job.cells),
                                                    key=lambda k: int(k[1:]))
    assert [j.estimate_s for j in longest_first(cell_jobs(cells, 1, store_root="s",
                                                          results_dir="r", cache_dir="c"))] \
        == [9, 8, 7, 3, 2, 1]
    assert cell_jobs([], 3, store_root="s", results_dir="r", cache_dir="c") == []


def test_cells_per_job():
    assert ExecutorSettings().cells_per_job(40) == 40                     # serial: one job
    assert ExecutorSettings(name="local", workers=2).cells_per_job(42) == 11   # 4 jobs
    assert ExecutorSettings(name="local", job_size=3).cells_per_job(42) == 3
    assert ExecutorSettings(name="slurm", array_parallelism=8).cells_per_job(42) == 6


@pytest.mark.parametrize("config, match", [({"name": "pbs"}, "executor=serial"),
                                           ({"name": "local", "workers": 0}, "workers=0"),
                                           ({"name": "local", "nodes": 2}, "unknown")])
def test_bad_settings_are_named(config, match):
    with pytest.raises(BrainfmError, match=match):
        ExecutorSettings.from_config(config)


def test_serial_runs_need_no_submitit():
    code = ("import sys, brainfm.bench.runner, brainfm.bench.sweep, brainfm.cli; "
            "assert 'submitit' not in sys.modules, 'imported submitit'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_slurm_job_array_script(tmp_path, monkeypatch):
    """executor=slurm as brainfm-bench configures it: one array of 3 tasks, 2 at a time,
    with the partition, time, GPUs, CPUs, memory, account, and submitit's pre-emption signal
    (USR2) 90 s before the kill: the task re-queues and skips the cells it stored."""
    from submitit.helpers import DelayedSubmission

    from omegaconf import OmegaConf

    from brainfm.bench.executor import make_submitit_executor
    from brainfm.configuration import compose_config

    bin_dir = tmp_path / "bin"     # submitit looks for srun, and submits with sbatch
    bin_dir.mkdir()
    for tool, body in (("srun", "exit 1\n"),
                       ("sbatch", 'echo "$1" >> "$(dirname "$0")/submitted"\n'
                                  'echo "Submitted batch job 4242"\n')):
        (bin_dir / tool).write_text("#!/bin/sh\n" + body)
        (bin_dir / tool).chmod((bin_dir / tool).stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    cfg = compose_config(["executor=slurm", "executor.partition=gpu", "executor.job_size=2",
                          "executor.array_parallelism=2", "+executor.additional.account=lab",
                          "executor.setup=[module load cuda]"], config_name="bench")
    settings = ExecutorSettings.from_config(OmegaConf.to_container(cfg.executor))
    cells = _cells([5, 4, 3, 2, 1, 6])
    jobs = longest_first(cell_jobs(cells, settings.cells_per_job(len(cells)), store_root="s",
                                   results_dir="r", cache_dir="c",
                                   threads=settings.threads_per_worker))
    handles = submit_all(make_submitit_executor(settings, tmp_path / "jobs"), jobs)
    assert [h.job_id for h in handles] == ["4242_0", "4242_1", "4242_2"]
    assert len((bin_dir / "submitted").read_text().split()) == 1      # one sbatch call
    script = handles[0].paths.submission_file.read_text()
    for line in ("#SBATCH --array=0-2%2", "#SBATCH --partition=gpu", "#SBATCH --time=120",
                 "#SBATCH --gpus-per-node=1", "#SBATCH --cpus-per-task=8",
                 "#SBATCH --mem=32GB", "#SBATCH --signal=USR2@90", "#SBATCH --account=lab",
                 "#SBATCH --open-mode=append", "module load cuda"):
        assert line in script, f"{line!r} not in\n{script}"
    task = handles[0].submission()          # what array task 0 runs: the longest job
    assert isinstance(task.function, CellJob) and task.function.threads == 8
    assert [c.key for c in task.function.cells] == [c.key for c in jobs[0].cells]
    requeued = task.function.checkpoint()   # what submitit re-queues on that signal
    assert isinstance(requeued, DelayedSubmission) and requeued.function is task.function

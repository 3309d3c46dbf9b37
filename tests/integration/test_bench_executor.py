"""brainfm-bench's executors on real stores: local worker processes give the serial run's
results cell by cell, a killed worker leaves a store that a re-run completes, two executors
can fill one results store at once, a pre-empted job redoes only the cell it was in, and
pretraining runs go through the same executor."""
import concurrent.futures
import os
import signal
import time

import pandas as pd
import psutil
import pytest

from brainfm.bench.executor import JobsFailed
from brainfm.bench.runner import run_benchmark

pytestmark = [pytest.mark.real_data, pytest.mark.slow]

TINY = {"d_model": 32, "n_layers": 2, "n_heads": 4, "d_ff": 64, "positional": "sensor"}
#: 4 cells: a classical baseline and a tiny network from scratch on 2 LOSO folds of eegmat
EXPERIMENT = {"datasets": ["eegmat"], "seeds": [0], "max_folds": 2,
              "protocols": {"default": {"name": "loso"}},
              "pipelines": {"ts_lr": {"kind": "classical", "baseline": "ts_lr"},
                            "scratch": {"kind": "scratch", "epochs": 2, "patience": 2,
                                        "backbone": {"model": TINY}}}}
LOCAL = {"name": "local", "workers": 2, "threads_per_worker": 1, "poll_s": 0.5}


def _sorted(table: pd.DataFrame) -> pd.DataFrame:
    keys = ["dataset", "pipeline", "fold", "subject", "seed", "metric"]
    return table.sort_values(keys).reset_index(drop=True)


def _results(folder) -> pd.DataFrame:
    return _sorted(pd.read_csv(folder / "results.csv", dtype={"subject": str}))


def _stored(folder) -> set[str]:
    return {p.stem for p in (folder / "cells").glob("*.json")}


@pytest.fixture(scope="module")
def serial_run(prepared_stores, tmp_path_factory):
    out = tmp_path_factory.mktemp("serial")
    result = run_benchmark(EXPERIMENT, prepared_stores[0], out, progress=False)
    assert result["computed"] == 4
    return out, _results(out)


def test_local_workers_give_the_serial_results(serial_run, prepared_stores, tmp_path):
    _, serial = serial_run
    experiment = {**EXPERIMENT, "executor": {**LOCAL, "job_size": 1}}
    result = run_benchmark(experiment, prepared_stores[0], tmp_path, progress=False)
    assert result["computed"] == 4 and result["skipped"] == 0
    pd.testing.assert_frame_equal(_results(tmp_path), serial)
    logs = sorted((tmp_path / "jobs").glob("*_0_log.err"))
    assert len(logs) == 4      # one job per cell, each with its log
    again = run_benchmark(experiment, prepared_stores[0], tmp_path, progress=False)
    assert again["computed"] == 0 and again["skipped"] == 4
    assert len(list((tmp_path / "jobs").glob("*_0_log.err"))) == 4   # no job started


def _workers() -> list[psutil.Process]:
    """This test's submitit job processes (the Python processes computing cells)."""
    me = psutil.Process(os.getpid())
    return [p for p in me.children(recursive=True)
            if "submitit.core._submit" in " ".join(p.cmdline())]


def test_a_killed_worker_leaves_a_store_a_rerun_completes(serial_run, prepared_stores,
                                                          tmp_path):
    """Two jobs of two cells; once the first cell is stored both workers are killed
    (SIGKILL: no clean-up), which fails their jobs by name and log; the same command then
    computes only the cells that are missing, and the table is the serial run's."""
    _, serial = serial_run
    experiment = {**EXPERIMENT, "executor": {**LOCAL, "job_size": 2}}
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        run = pool.submit(run_benchmark, experiment, prepared_stores[0], tmp_path,
                          progress=False)
        deadline = time.monotonic() + 600
        while not _stored(tmp_path) and time.monotonic() < deadline and not run.done():
            time.sleep(0.2)
        killed = _workers()
        for worker in killed:
            worker.send_signal(signal.SIGKILL)
        with pytest.raises(JobsFailed) as failed:
            run.result(timeout=600)
    assert killed, "no worker was running when the first cell was stored"
    message = str(failed.value)
    assert "re-running the same command computes only the missing part" in message
    logs = [line.rsplit("(log: ", 1)[1].rstrip(")") for line in message.splitlines()
            if "(log: " in line]
    assert logs and all(os.path.exists(log) for log in logs), message
    done_before = _stored(tmp_path)
    assert 1 <= len(done_before) < 4
    assert not (tmp_path / "cells" / "corrupt").exists()
    rerun = run_benchmark(experiment, prepared_stores[0], tmp_path, progress=False)
    assert rerun["skipped"] == len(done_before)
    assert rerun["computed"] == 4 - len(done_before)
    pd.testing.assert_frame_equal(_results(tmp_path), serial)


def test_two_executors_fill_one_results_store_at_once(serial_run, prepared_stores, tmp_path):
    """A serial run and a local one started together on the same results folder: both end,
    no cell file is corrupt, and each one's table is the reference."""
    _, serial = serial_run
    local = {**EXPERIMENT, "executor": {**LOCAL, "workers": 1, "job_size": 1}}
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        runs = [pool.submit(run_benchmark, experiment, prepared_stores[0], tmp_path,
                            progress=False, report_dir=tmp_path / name)
                for name, experiment in (("serial", EXPERIMENT), ("local", local))]
        results = [run.result(timeout=900) for run in runs]
    assert all(r["computed"] + r["skipped"] == 4 for r in results)
    assert len(_stored(tmp_path)) == 4 and not (tmp_path / "cells" / "corrupt").exists()
    for name in ("serial", "local"):
        pd.testing.assert_frame_equal(_results(tmp_path / name), serial)


def test_preempted_job_requeues_and_redoes_only_its_current_cell(prepared_stores, tmp_path):
    """submitit's pre-emption signal (USR2 locally, USR1 on SLURM) on a job of two cells after
    its first is stored: the job re-queues itself, the first cell's file is not written
    again, and the second is computed."""
    from submitit.local.local import LocalJobEnvironment

    from brainfm.bench.cells import plan_cells
    from brainfm.bench.executor import ExecutorSettings, make_submitit_executor
    from brainfm.bench.jobs import cell_jobs
    from brainfm.bench.results import ResultsStore

    experiment = {**EXPERIMENT, "pipelines": {"scratch": EXPERIMENT["pipelines"]["scratch"]}}
    cells = plan_cells(experiment, prepared_stores[0], ResultsStore(tmp_path))
    (job,) = cell_jobs(cells, 2, store_root=prepared_stores[0], results_dir=tmp_path,
                       cache_dir=tmp_path / "features", threads=1)
    executor = make_submitit_executor(ExecutorSettings(name="local"), tmp_path / "jobs")
    handle = executor.submit(job)
    first = tmp_path / "cells" / f"{job.cells[0].key}.json"
    deadline = time.monotonic() + 600
    while not first.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    written = first.stat().st_mtime_ns
    (worker,) = _workers()         # the signal SLURM sends the job's processes
    worker.send_signal(LocalJobEnvironment._usr_sig())
    assert handle.result() == 1    # after the re-queue: one cell computed, one found stored
    assert first.stat().st_mtime_ns == written
    assert _stored(tmp_path) == {c.key for c in cells}
    assert "this job is preempted" in handle.paths.stderr.read_text()


def test_pretraining_runs_side_by_side(prepared_stores, tmp_path):
    """Two leave-dataset-out pretraining runs through two local workers: both checkpoint
    folders are made; asked again, nothing starts."""
    from brainfm.bench.sweep import pretrain_sweep

    store_root = prepared_stores[0]
    runs = {str(tmp_path / f"without_{held}"):
            ["experiment=pretrain_quick", f"store_root={store_root}",
             f"data.datasets=[{','.join(d for d in ('bonn', 'delhi', 'muse_p300') if d != held)}]",
             f"output_dir={tmp_path / held}", "trainer.max_epochs=-1", "trainer.max_steps=4",
             "trainer.val_check_interval=4", "trainer.check_val_every_n_epoch=null",
             "trainer.enable_progress_bar=false"]
            for held in ("bonn", "delhi")}
    pretrain_sweep(runs, {**LOCAL, "job_size": 1}, tmp_path / "jobs", progress=False)
    assert all(os.path.getsize(os.path.join(path, "model.safetensors")) > 0 for path in runs)
    assert len(list((tmp_path / "jobs").glob("*_0_log.err"))) == 2
    stamps = {path: os.stat(path).st_mtime_ns for path in runs}
    pretrain_sweep(runs, {**LOCAL, "job_size": 1}, tmp_path / "jobs", progress=False)
    assert {path: os.stat(path).st_mtime_ns for path in runs} == stamps
    assert len(list((tmp_path / "jobs").glob("*_0_log.err"))) == 2

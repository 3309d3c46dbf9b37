"""`brainfm-bench experiment=bench_quick` end to end on real data, as users run it.

Pretraining per held-out dataset, per-dataset baselines, both criss-cross heads, probes,
per-fold scoring where there are no subjects, resumability and a Hydra multirun sweep.
"""
import re
import subprocess
import sys

import pandas as pd
import pytest

from brainfm.checkpoint import read_model_file

pytestmark = [pytest.mark.real_data, pytest.mark.slow]

CLI = [sys.executable, "-c", "from brainfm.cli import bench_main; bench_main()"]


def _bench(cwd, store_root, *overrides, flags=()):
    out = subprocess.run([*CLI, *flags, "experiment=bench_quick", f"store_root={store_root}",
                          "progress=false", *overrides], cwd=cwd, capture_output=True,
                         text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


@pytest.fixture(scope="module")
def quick_run(prepared_stores, tmp_path_factory):
    cwd = tmp_path_factory.mktemp("bench_quick")
    stdout = _bench(cwd, prepared_stores[0])
    return cwd, prepared_stores[0], stdout


def _report_dir(stdout):
    return re.search(r"tables and plots in (\S+),", stdout).group(1)


def test_quick_experiment_end_to_end(quick_run):
    cwd, _, stdout = quick_run
    # one checkpoint per evaluated dataset, pretrained on the others only
    for dataset in ("eegmat", "ssvep_exoskeleton", "bonn"):
        extra = read_model_file(cwd / f"checkpoints/bench_quick/without_{dataset}")[2]
        assert dataset not in extra["datasets"] and len(extra["datasets"]) == 4
    table = pd.read_csv(f"{_report_dir(stdout)}/results.csv", dtype={"subject": str})
    pipes = table.groupby("dataset")["pipeline"].unique().map(set).to_dict()
    shared = {"eegnet", "criss_cross_finetune", "criss_cross_finetune_flatten",
              "criss_cross_probe", "criss_cross_scratch", "criss_cross_probe_random"}
    assert pipes["ssvep_exoskeleton"] == shared | {"cca"}       # baselines per paradigm
    assert pipes["eegmat"] == shared | {"csp_lda", "bandpower_lr", "bandpower_lr_subject_norm"}
    assert pipes["bonn"] == shared | {"bandpower_lr"}
    # LOSO scores the test subjects; bonn (no subject ids) is scored per fold only
    assert set(table.loc[table["dataset"] == "eegmat", "subject"]) == {"00", "01", "__fold__"}
    assert set(table.loc[table["dataset"] == "bonn", "subject"]) == {"__fold__"}
    ba = table[(table["metric"] == "balanced_accuracy") & (table["subject"] != "__fold__")]
    cca = ba[(ba["pipeline"] == "cca")]["value"].mean()
    assert cca > 0.4, f"SSVEP CCA at {cca:.2f}: the sanity anchor is far above 0.25"
    summary = open(f"{_report_dir(stdout)}/summary.md").read()
    assert "| folds | seeds |" in summary and "| subjects | seeds |" in summary
    assert "Paired Wilcoxon" in summary and "p Holm" in summary
    assert "46 cells computed, 0 already done" in stdout


def test_rerun_computes_nothing(quick_run):
    cwd, store_root, _ = quick_run
    assert "0 cells computed, 46 already done" in _bench(cwd, store_root)


def test_multirun_sweep_shares_finished_cells(quick_run):
    """A sweep over the head's learning rate: the job whose setting matches the finished run
    computes nothing, the other only its own cell, and each job reports only its cells."""
    cwd, store_root, _ = quick_run
    stdout = _bench(cwd, store_root, "datasets=[bonn]", "max_folds=1",
                    "pipelines.criss_cross_finetune.head_lr=1e-3,3e-3", flags=["-m"])
    computed = [int(n) for n in re.findall(r"(\d+) cells computed", stdout)]
    assert computed == [0, 1]
    for report in re.findall(r"tables and plots in (\S+),", stdout):
        table = pd.read_csv(f"{report}/results.csv")
        assert set(table["dataset"]) == {"bonn"} and set(table["fold"]) == {"fold=1/5"}
        assert table["pipeline"].nunique() == 7


def test_local_workers_give_the_serial_rows(quick_run):
    """The same experiment through 2 local worker processes, into a fresh results folder
    (the checkpoints are the serial run's): results.csv equals the serial run's, row for row."""
    cwd, store_root, stdout = quick_run
    local = _bench(cwd, store_root, "executor=local", "executor.workers=2",
                   "results_dir=results/bench_quick_local")
    assert "46 cells computed, 0 already done" in local
    keys = ["dataset", "pipeline", "fold", "subject", "seed", "metric"]
    serial, parallel = (pd.read_csv(f"{_report_dir(out)}/results.csv", dtype={"subject": str})
                        .sort_values(keys, ignore_index=True) for out in (stdout, local))
    pd.testing.assert_frame_equal(parallel, serial)

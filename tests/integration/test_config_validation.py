"""Entry points check their whole configuration before the first expensive step and exit
non-zero with every problem listed; nothing (stores, checkpoints, cells) is made first."""
from pathlib import Path

import pytest

from brainfm.data.prep import prepare

from ..helpers import load_configs, run_tool

pytestmark = pytest.mark.real_data

SAMPLE = Path(__file__).resolve().parents[2] / "brainfm" / "sample_data" / "eegmat"


def test_bench_typos_are_all_reported_before_any_work(tmp_path):
    out = run_tool("brainfm-bench", "experiment=bench_quick", f"store_root={tmp_path}/stores",
                   f"results_dir={tmp_path}/results", f"hydra.run.dir={tmp_path}/run",
                   "pipelines.eegnet.kind=eegnett",
                   "pipelines.cca.datasets=[ssvep_exoskelton]",
                   "+protocols.bon={name: loso}")
    assert out.returncode != 0
    err = out.stderr
    assert "3 problem(s)" in err, err[-3000:]
    assert "pipelines.eegnet.kind='eegnett'" in err
    assert "pipelines.cca.datasets: unknown dataset 'ssvep_exoskelton'" in err
    assert "protocols.bon: unknown dataset 'bon'" in err
    assert not (tmp_path / "stores").exists() and not (tmp_path / "results").exists()


def test_pretrain_problems_are_all_reported_before_any_work(tmp_path):
    out = run_tool("brainfm-pretrain", "experiment=pretrain_quick",
                   f"store_root={tmp_path}/stores", f"hydra.run.dir={tmp_path}/run",
                   "data.datasets=[eegmat_sampel,../up]", "logger=csvv",
                   f"resume={tmp_path}/gone.ckpt")
    assert out.returncode != 0
    err = out.stderr
    assert "4 problem(s)" in err, err[-3000:]
    assert "unknown dataset 'eegmat_sampel'" in err and "'../up' cannot name a store" in err
    assert "logger='csvv'" in err and f"resume={tmp_path}/gone.ckpt: no such checkpoint" in err
    assert not (tmp_path / "stores").exists()


@pytest.mark.slow
def test_pretraining_on_a_store_where_every_recording_failed_is_refused(tmp_path):
    """Every recording of the sample damaged: the store holds only failures; pretraining
    stops before training and exports nothing."""
    bad = tmp_path / "bad"
    bad.mkdir()
    for edf in SAMPLE.glob("*.edf"):
        (bad / edf.name).write_bytes(edf.read_bytes()[:1000])
    spec, std = load_configs("eegmat_sample", [f"dataset.path={bad}"])
    view = spec.with_view("continuous") if hasattr(spec, "with_view") else spec
    folder = view.store_name() if hasattr(view, "store_name") else view.name
    summary = prepare(view, std, bad, tmp_path / "stores" / folder, progress=False,
                      n_jobs=1)
    assert summary.failed == 8 and summary.windows == 0
    out = run_tool("brainfm-pretrain", "experiment=pretrain_quick",
                   f"store_root={tmp_path}/stores", f"hydra.run.dir={tmp_path}/run")
    assert out.returncode != 0
    assert "has no windows (8 of 8 recordings failed" in out.stderr, out.stderr[-3000:]
    assert not (tmp_path / "run" / "model.pt").exists()

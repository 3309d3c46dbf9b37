"""brainfm-pretrain on real recordings: the loss falls, resume is exact, DDP shares the data."""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from brainfm.checkpoint import from_pretrained

pytestmark = [pytest.mark.real_data, pytest.mark.slow]

# the installed console script: Lightning's DDP launcher re-runs sys.argv for rank 1
CLI = [str(Path(sys.executable).with_name("brainfm-pretrain"))]


def _pretrain(run_dir, store_root, *overrides, env=None):
    cmd = CLI + ["experiment=pretrain_quick", f"store_root={store_root}",
                 f"hydra.run.dir={run_dir}", "trainer.enable_progress_bar=false", *overrides]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                          env={**os.environ, **(env or {})})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return json.loads((run_dir / "result.json").read_text())


def _metric(run_dir, name):
    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    return [(int(r["step"]), float(r[name])) for r in rows if r.get(name)]


@pytest.fixture(scope="module")
def store_root(prepared_stores):
    return prepared_stores[0]


def test_pretraining_beats_the_trivial_predictors_on_held_out_subjects(tmp_path, store_root):
    """The CPU recipe on eegmat's continuous recordings, 300 steps: on held-out subjects the
    model's hidden-patch MSE is below the best trivial predictor's (the visible-channel
    mean, which is itself far below zeros'), and the figures travel in the model file."""
    run = tmp_path / "run"
    result = _pretrain(run, store_root, "model=criss_cross_small", "data.datasets=[eegmat]",
                       "trainer.max_epochs=-1", "trainer.max_steps=300",
                       "trainer.val_check_interval=150", "trainer.check_val_every_n_epoch=null",
                       "trainer.log_every_n_steps=10")
    assert result["global_step"] == 300
    held = result["heldout"]["eegmat"]
    assert held["best_trivial"] == "spatial" and held["spatial_vs_zero"] < 0.7
    assert held["model_vs_best_trivial"] < 0.97, held
    curve = [v for _, v in _metric(run, "val_by_dataset/eegmat/model_vs_best_trivial")]
    assert len(curve) == 2 and curve[-1] == pytest.approx(held["model_vs_best_trivial"])
    model = from_pretrained(run / "checkpoint")
    assert model.extra["datasets"] == ["eegmat"] and model.extra["sfreq"] == 200.0
    training = model.extra["training"]
    assert training["heldout"]["eegmat"] == held and training["view"] == "continuous"
    assert training["drawn_mix"] == {"eegmat": 1.0}


def test_resume_continues_exactly(tmp_path, store_root):
    """Two epochs straight == one epoch, stop, resume for the second (same schedule)."""
    common = ["data.datasets=[delhi,muse_p300]", "data.max_abs=null", "task.total_steps=60"]
    _pretrain(tmp_path / "straight", store_root, *common, "trainer.max_epochs=2")
    _pretrain(tmp_path / "part", store_root, *common, "trainer.max_epochs=1")
    last = tmp_path / "part" / "checkpoints" / "last.ckpt"
    _pretrain(tmp_path / "resumed", store_root, *common, "trainer.max_epochs=2",
              f"resume={last}")
    a = from_pretrained(tmp_path / "straight" / "checkpoint").state_dict()
    b = from_pretrained(tmp_path / "resumed" / "checkpoint").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_ddp_cpu_two_processes_split_the_batches(tmp_path, store_root):
    one = _pretrain(tmp_path / "one", store_root, "data.datasets=[delhi]",
                    "trainer.max_epochs=1", "data.val_fraction=0.2")
    two = _pretrain(tmp_path / "two", store_root, "data.datasets=[delhi]",
                    "trainer.max_epochs=1", "data.val_fraction=0.2", "trainer=ddp_cpu")
    # each rank took every other batch: half the optimiser steps per epoch
    assert two["global_step"] == (one["global_step"] + 1) // 2
    assert (tmp_path / "two" / "checkpoint" / "config.json").exists()

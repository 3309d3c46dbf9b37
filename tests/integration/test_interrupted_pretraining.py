"""Pretraining interrupted by kill -9, Ctrl-C or a pre-emption signal loses at most a few
steps: a checkpoint exists, the README's resume command finishes the run, and metrics.csv
holds the same rows as a run that was never interrupted."""
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import torch

pytestmark = [pytest.mark.real_data, pytest.mark.slow]

CLI = [str(Path(sys.executable).with_name("brainfm-pretrain"))]
SETTINGS = ["experiment=pretrain_quick", "trainer.enable_progress_bar=false",
            "trainer.max_epochs=30", "checkpoint_every_n_steps=10"]


def _cmd(run_dir, store_root, *extra):
    return CLI + SETTINGS + [f"store_root={store_root}", f"hydra.run.dir={run_dir}", *extra]


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def _run(run_dir, store_root, *extra):
    done = subprocess.run(_cmd(run_dir, store_root, *extra), capture_output=True, text=True,
                          timeout=600, env=_env())
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return json.loads((run_dir / "result.json").read_text())


def _ckpt_step(path) -> int:
    return int(torch.load(path, map_location="cpu", weights_only=True)["global_step"])


def _start_and_wait_for_checkpoint(run_dir, store_root, *extra, min_step=10):
    """Start a run; return it once a periodic checkpoint past ``min_step`` is on disk."""
    proc = subprocess.Popen(_cmd(run_dir, store_root, *extra), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env())
    last = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if last.exists():
            try:
                if _ckpt_step(last) >= min_step:
                    return proc, last
            except Exception:  # being replaced right now
                pass
        time.sleep(0.1)
    out, err = proc.communicate(timeout=60)
    pytest.fail(f"no checkpoint while the run was going (rc {proc.returncode}):\n{err[-3000:]}")


def _step_counts(run_dir) -> Counter:
    with open(run_dir / "metrics.csv", newline="") as fh:
        return Counter(int(row["step"]) for row in csv.DictReader(fh))


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """One uninterrupted run (it also prepares the sample's store for the others)."""
    root = tmp_path_factory.mktemp("pretrain_faults")
    run = root / "straight"
    result = _run(run, root / "stores")
    return root / "stores", run, result


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_stop_signal_checkpoints_and_resume_finishes_the_run(tmp_path, straight, sig):
    store_root, straight_run, straight_result = straight
    run = tmp_path / "run"
    proc, last = _start_and_wait_for_checkpoint(run, store_root)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, err[-3000:]
    assert f"{signal.Signals(sig).name} received" in err and "resume=" in err
    assert not (run / "checkpoint").exists()  # an interrupted run exports nothing
    stopped_at = _ckpt_step(last)
    assert 10 <= stopped_at < straight_result["global_step"]

    result = _run(run, store_root, f"resume={last}")
    assert result["global_step"] == straight_result["global_step"]
    assert _step_counts(run) == _step_counts(straight_run)


def test_kill_9_then_resume_loses_nothing(tmp_path, straight):
    store_root, straight_run, straight_result = straight
    run = tmp_path / "run"
    proc, last = _start_and_wait_for_checkpoint(run, store_root)
    proc.kill()
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL

    result = _run(run, store_root, f"resume={last}")
    assert result["global_step"] == straight_result["global_step"]
    assert _step_counts(run) == _step_counts(straight_run)
    assert (run / "checkpoint" / "config.json").exists()


def test_resume_from_a_missing_checkpoint_is_explained(tmp_path, straight):
    store_root = straight[0]
    missing = tmp_path / "nowhere" / "last.ckpt"
    done = subprocess.run(_cmd(tmp_path / "run", store_root, f"resume={missing}"),
                          capture_output=True, text=True, timeout=300, env=_env())
    assert done.returncode != 0
    assert str(missing) in done.stderr and "no such checkpoint" in done.stderr


def _files(run) -> dict:
    return {p.relative_to(run).as_posix(): p.read_bytes() for p in sorted(run.rglob("*"))
            if p.is_file() and ".hydra" not in p.parts and not p.name.endswith(".log")}


def test_pretraining_again_into_a_finished_run_is_refused(tmp_path, straight):
    store_root, straight_run, _ = straight
    before = _files(straight_run)
    done = subprocess.run(_cmd(straight_run, store_root), capture_output=True, text=True,
                          timeout=300, env=_env())
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert f"{straight_run} holds a finished pretraining run (result.json" in done.stderr
    assert "resume=" in done.stderr and "overwrite=true" in done.stderr
    assert _files(straight_run) == before  # the trained run is untouched
    # overwrite=true starts over, deleting the run's outputs only
    again = tmp_path / "again"
    shutil.copytree(straight_run, again)
    (again / "notes.md").write_text("my notes on this run")
    result = _run(again, store_root, "overwrite=true", "trainer.max_epochs=1")
    assert result["global_step"] < json.loads((straight_run / "result.json").read_text()
                                              )["global_step"]
    assert (again / "notes.md").read_text() == "my notes on this run"
    assert _ckpt_step(again / "checkpoints" / "last.ckpt") == result["global_step"]


def test_resume_with_another_model_config_is_refused_naming_both(tmp_path, straight):
    store_root, straight_run, _ = straight
    last = straight_run / "checkpoints" / "last.ckpt"
    done = subprocess.run(_cmd(tmp_path / "run", store_root, f"resume={last}",
                               "model.n_heads=8"),
                          capture_output=True, text=True, timeout=300, env=_env())
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "trained with another model configuration (n_heads: checkpoint 4, now 8)" \
        in done.stderr, done.stderr[-2000:]
    assert "checkpoint model {" in done.stderr and "this run's model {" in done.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()  # refused before any work


def test_resume_from_a_damaged_checkpoint_is_refused(tmp_path, straight):
    from ..helpers import damage_archive

    damaged = tmp_path / "last.ckpt"
    shutil.copyfile(straight[1] / "checkpoints" / "last.ckpt", damaged)
    damage_archive(damaged)
    done = subprocess.run(_cmd(tmp_path / "run", straight[0], f"resume={damaged}"),
                          capture_output=True, text=True, timeout=300, env=_env())
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert f"{damaged}: damaged: its archive member" in done.stderr, done.stderr[-2000:]


def test_checkpoints_on_a_time_interval_and_progress_lines(tmp_path, straight):
    """No step interval at all: the checkpoint during the run comes from the minutes
    interval; without a progress bar, progress lines say the step and the time left."""
    store_root = straight[0]
    proc, last = _start_and_wait_for_checkpoint(
        tmp_path / "run", store_root, "checkpoint_every_n_steps=0",
        "checkpoint_every_minutes=0.005", "progress_every_s=0.2", min_step=2)
    assert proc.poll() is None  # written while the run was going, not at its end
    proc.kill()
    _, err = proc.communicate(timeout=60)
    assert re.search(r"brainfm-pretrain: step \d+/\d+ \(\d+%\), .*s/step, about .* left",
                     err), err[-2000:]


def test_bench_pretrained_block_shows_progress_and_starts_over_a_finished_run(
        tmp_path, straight, capfd):
    """The benchmark's ``pretrained`` block: progress lines instead of silence; its own run
    folder, finished but its checkpoint not copied out, is started over, not refused."""
    import shutil

    from brainfm.bench.sweep import ensure_pretrained

    store_root = straight[0]
    spec = {"experiment": "pretrain_quick", "datasets": ["eegmat_sample"],
            "leave_dataset_out": False, "path": str(tmp_path / "without_{dataset}"),
            "overrides": ["trainer.max_epochs=-1", "trainer.max_steps=12",
                          "trainer.enable_progress_bar=false", "progress_every_s=0.2"]}
    path = Path(ensure_pretrained(spec, ["x"], store_root)["x"])
    err = capfd.readouterr().err
    assert (path / "config.json").is_file() and "brainfm-pretrain: step 12/12 (100%)" in err
    assert re.search(r"step \d+/12 \(\d+%\), .*about .* left", err), err[-2000:]
    shutil.rmtree(path)
    ensure_pretrained(spec, ["x"], store_root)
    assert "overwrite=true" in capfd.readouterr().out and (path / "config.json").is_file()

"""brainfm-pretrain task=diffusion on real recordings: one command trains, validates raw and
EMA weights beside the all-zeros predictor, keeps checkpoints to score against step, and
exports a model file of the diffusion family; the benchmarks' checks and probe features read
the run."""
import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmarks import diffusion_checks, diffusion_probe
from brainfm.checkpoint import from_pretrained
from brainfm.models.diffusion_denoiser import DiffusionDenoiser

pytestmark = [pytest.mark.slow]

CLI = [str(Path(sys.executable).with_name("brainfm-pretrain"))]


def test_diffusion_pretraining_from_one_command(tmp_path):
    run = tmp_path / "run"
    cmd = CLI + ["experiment=pretrain_diffusion", "data.datasets=[eegmat_sample]",
                 f"store_root={tmp_path / 'stores'}", f"hydra.run.dir={run}",
                 "trainer.max_steps=40", "trainer.val_check_interval=20",
                 "task.warmup_steps=0", "trainer.log_every_n_steps=5",
                 "trainer.enable_progress_bar=false", "checkpoint_keep_every_n_steps=20"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    result = json.loads((run / "result.json").read_text())
    assert result["global_step"] == 40
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    val = [(float(r["val/mse_vs_zero"]), float(r["val/ema_mse_vs_zero"])) for r in rows
           if r.get("val/mse_vs_zero")]
    assert len(val) == 2
    # the zero-initialised output starts at the all-zeros predictor (ratio 1); 40 steps on
    # held-out subjects must already do better with the raw weights
    assert val[-1][0] < 0.99 and val[-1][0] < val[0][0] + 1e-6, val
    model = from_pretrained(run / "checkpoint")
    assert isinstance(model, DiffusionDenoiser)
    assert model.extra["datasets"] == ["eegmat_sample"] and model.extra["sfreq"] == 200.0
    assert not (run / "model.pt").exists()  # the checkpoint folder is the one format written
    # the EMA weights are exported beside the weights: the run's EMA (last.ckpt is written
    # just before the final step's EMA update, so within that one update of it; before
    # ema_after steps the EMA copies the weights, tests/unit/test_families.py has distinct ones)
    ema = from_pretrained(run / "checkpoint", weights="ema").state_dict()
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    for name, value in ema.items():
        assert torch.allclose(value, ckpt["state_dict"][f"ema.{name}"], atol=2e-3), name

    _checks_against_step(run)
    _probe_features(run, tmp_path)


def _checks_against_step(run: Path) -> None:
    """benchmarks/diffusion_checks.py --snapshots scores the kept steps on the same inputs."""
    kept = sorted(p.name for p in (run / "checkpoints").glob("step-*.ckpt"))
    assert kept == ["step-0000020.ckpt", "step-0000040.ckpt"], kept
    out = diffusion_checks.main([str(run), "--snapshots", "--per-bin", "8"])
    assert [p["step"] for p in out["points"]] == [20, 40]
    first, last = (p["rows"] for p in out["points"])
    for a, b in zip(first, last):
        # baselines do not depend on the weights: the same held-out inputs at every step
        assert (a["zeros"], a["wiener"]) == (b["zeros"], b["wiener"])
    for row in last[:3]:  # t < 30: v is mostly noise, and a Wiener gain recovers most of it
        assert row["wiener"] < 0.5 * row["zeros"], row
    assert first[0]["model"] != last[0]["model"]  # the snapshots hold different weights
    assert (run / "diffusion_checks_by_step.json").exists()


def _probe_features(run: Path, tmp_path: Path) -> None:
    """benchmarks/diffusion_probe.py: pooled latents of 5 s pieces of the continuous view,
    labelled by the dataset's own rule, trained and random weights."""
    import numpy as np

    out = tmp_path / "lat.npz"
    store = tmp_path / "stores" / "eegmat_sample.continuous"
    diffusion_probe.main(["extract", "--run", str(run), "--store", str(store),
                          "--piece", "1000", "--features", "latents", "--out", str(out)])
    data = np.load(out)
    n = len(data["label"])
    model = from_pretrained(run / "checkpoint")
    width = len(model.blocks) * model.d_model
    for name in ("trained_model", "trained_ema", "random_init"):
        assert data[f"features_{name}"].shape == (n, width)
    # SubjectNN_1 is rest (0), SubjectNN_2 arithmetic (1)
    runs = np.array([str(r).split("_")[1][0] for r in data["recording"]])
    assert set(data["label"][runs == "1"]) == {0} and set(data["label"][runs == "2"]) == {1}
    assert not np.allclose(data["features_trained_model"], data["features_random_init"])

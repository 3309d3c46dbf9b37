"""brainfm-pretrain task=diffusion on real recordings: one command trains, validates raw and
EMA weights beside the all-zeros predictor, and exports a model file of the diffusion family."""
import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

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
                 "trainer.enable_progress_bar=false"]
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
    model = from_pretrained(run / "model.pt")
    assert isinstance(model, DiffusionDenoiser)
    assert model.extra["datasets"] == ["eegmat_sample"] and model.extra["sfreq"] == 200.0

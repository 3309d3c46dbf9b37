"""From brainfm-pretrain to embeddings, for both task kinds: the run writes a checkpoint
folder (result.json ``checkpoint_dir``) beside its model file, brainfm-export turns the
run's last.ckpt into the same weights and contract, and brainfm-embed reads the folder."""
import json
from pathlib import Path

import numpy as np
import pytest

import brainfm
from brainfm.embed.command import main as embed_main
from brainfm.hub.export import main as export_main
from brainfm.paths import sample_root

from ..helpers import same_weights

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def store_root(tmp_path_factory):
    return tmp_path_factory.mktemp("stores")  # prepared by the first run, reused by the next


@pytest.mark.parametrize("overrides, family", [
    (["experiment=pretrain_quick", "trainer.max_epochs=1"], "criss_cross"),
    (["experiment=pretrain_diffusion", "data.datasets=[eegmat_sample]", "trainer.max_steps=2",
      "task.warmup_steps=0", "model.n_layers=2", "model.d_model=16", "model.d_state=8"],
     "diffusion"),
])
def test_run_checkpoint_export_and_embed(tmp_path, store_root, overrides, family):
    from brainfm.configuration import compose_config
    from brainfm.pretrain_run import run_pretrain

    run = tmp_path / "run"
    run_pretrain(compose_config([*overrides, f"store_root={store_root}", f"output_dir={run}",
                                 "trainer.enable_progress_bar=false",
                                 "trainer.num_sanity_val_steps=0"], config_name="pretrain"))
    result = json.loads((run / "result.json").read_text())
    folder = Path(result["checkpoint_dir"])
    assert folder == run / "checkpoint" and not (run / "model.pt").exists()  # folders only
    model = brainfm.from_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    assert config["family"] == family and config["steps"] == result["global_step"]
    assert config["corpus"]["datasets"] == ["eegmat_sample"] and config["corpus"]["hours"] > 0
    assert config["contract"]["sensor_types"] == ["eeg"] and config["contract"]["window_s"]
    assert config["contract"]["channels"]  # eegmat_sample: one montage, recorded in order
    # the run's last.ckpt -> the same weights and contract
    assert export_main([str(run), str(tmp_path / "exported")]) == 0
    exported = json.loads((tmp_path / "exported" / "config.json").read_text())
    assert same_weights(brainfm.from_pretrained(tmp_path / "exported"), model)
    assert exported["contract"] == config["contract"] and exported["steps"] == config["steps"]
    out = tmp_path / "emb"
    sample = sample_root() / "eegmat" / "Subject00_1.edf"
    assert embed_main([f"checkpoint={folder}", f"input={sample}", f"out={out}",
                       "progress=false"]) == 0
    windows = np.load(out / "windows.npy")
    window_s = config["contract"]["window_s"]  # the training windows (continuous view)
    assert len(windows) == int(62 // window_s) and np.isfinite(windows).all()
    assert windows.std(axis=0).max() > 0

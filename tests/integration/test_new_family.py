"""A family that exists only in the tests (tests/new_family.py) goes through every command
of the path with nothing outside its module naming it: pretraining on the real sample
(brainfm-pretrain's run), the run's checkpoint folder, brainfm-export of its last.ckpt,
embeddings of the dataset (brainfm-embed's), and the benchmark's probe and fine-tuning on
leave-one-subject-out folds."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

import brainfm
from brainfm.bench.pipelines import make_pipeline
from brainfm.bench.protocols import make_protocol
from brainfm.configuration import compose_config
from brainfm.data.loading import WindowDataset
from brainfm.embed import embed_dataset
from brainfm.hub.export import main as export_main
from brainfm.pretrain_run import ensure_stores, run_pretrain

from .. import new_family
from ..helpers import same_weights

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def registered():
    record = new_family.register()
    yield record
    new_family.unregister()


def _pretrain_config(run: Path, store_root: Path, record):
    cfg = compose_config(["experiment=pretrain_quick", f"store_root={store_root}",
                          f"output_dir={run}", "trainer.max_epochs=-1", "trainer.max_steps=4",
                          "trainer.val_check_interval=4", "trainer.check_val_every_n_epoch=null",
                          "trainer.enable_progress_bar=false",
                          "trainer.num_sanity_val_steps=0"], config_name="pretrain")
    OmegaConf.set_struct(cfg, False)
    cfg.model = {**record.small_config, "family": record.name}   # what a model yaml would say
    cfg.task = {"kind": record.default_task}
    return cfg


def test_a_test_only_family_passes_every_command(registered, tmp_path):
    store_root = tmp_path / "stores"
    run = tmp_path / "run"
    result = run_pretrain(_pretrain_config(run, store_root, registered))
    assert result["global_step"] == 4 and result["objective"] == registered.default_task
    folder = Path(result["checkpoint_dir"])
    config = json.loads((folder / "config.json").read_text())
    assert config["family"] == registered.name and config["objective"] == "patch_autoencoding"
    assert config["contract"]["channel_encoding"] == "sensor"
    assert config["corpus"]["datasets"] == ["eegmat_sample"]
    model = brainfm.from_pretrained(folder)
    assert isinstance(model, new_family.PatchMLP)

    assert export_main([str(run), str(tmp_path / "exported")]) == 0   # its last.ckpt
    exported = brainfm.from_pretrained(tmp_path / "exported")
    assert same_weights(exported, model) and exported.extra["datasets"] == ["eegmat_sample"]

    (store,) = ensure_stores(["eegmat_sample"], store_root, None)
    embedded = embed_dataset(folder, store, out=tmp_path / "emb", progress=False)
    assert embedded.windows.shape[1] == model.d_model and not embedded.failures

    windows = WindowDataset([store])
    split = next(iter(make_protocol("loso").split(windows.table)))
    for kind in ("probe", "finetune"):
        spec = {"kind": kind, "backbone": {"family": registered.name,
                                           "checkpoint": str(folder)}}
        if kind == "finetune":
            spec.update(epochs=1, patience=1)
        pred = make_pipeline(spec, tmp_path / "cache").run_fold(windows, split, seed=0)
        assert np.array_equal(np.sort(pred.rows), np.sort(split.test))
        assert np.allclose(pred.y_score.sum(1), 1.0, atol=1e-5)

"""The representation objectives as a user runs them: brainfm-pretrain with a latent or
band-power objective on the embedded sample, what the checkpoint records (pretext, read-out,
collapse statistics), and the recorded read-out used by embed and by the bench probe."""
import json

import numpy as np
import pytest
import torch

import brainfm
from brainfm.bench.pipelines import ProbePipeline
from brainfm.bench.protocols import LeaveOneSubjectOut
from brainfm.checkpoint import from_pretrained
from brainfm.data.loading import WindowDataset
from brainfm.models.heads import masked_mean

pytestmark = [pytest.mark.slow, pytest.mark.real_data]


@pytest.fixture(scope="module")
def store_root(tmp_path_factory):
    return tmp_path_factory.mktemp("stores")


def _pretrain(tmp_path, store_root, *overrides):
    from brainfm.configuration import compose_config
    from brainfm.pretrain_run import run_pretrain

    run = tmp_path / "run"
    run_pretrain(compose_config(["experiment=pretrain_quick", "trainer.max_epochs=2",
                                 f"store_root={store_root}", f"output_dir={run}",
                                 "trainer.enable_progress_bar=false", *overrides],
                                config_name="pretrain"))
    return run


@pytest.mark.parametrize("objective, extra", [
    ("latent", ["task.band_power_weight=0.5"]),
    ("band_power", []),
])
def test_pretraining_objective_records_pretext_readout_and_collapse(tmp_path, store_root,
                                                                    objective, extra):
    run = _pretrain(tmp_path, store_root, f"task.objective={objective}",
                    "task.mask_kind=channel_time", "task.mask_ratio=0.5", "readout_layer=0",
                    *extra)
    config = json.loads((run / "checkpoint" / "config.json").read_text())
    assert config["pretext"]["target"] == objective
    assert config["pretext"]["mask_kind"] == "channel_time"
    assert config["readout"] == {"layer": 0, "pool": "mean"}
    rep = config["training"]["representation"]
    assert rep["effective_rank"] > 1 and rep["std_mean"] > 0 and rep["collapsed"] is False
    # the band-power bar is scored on the held-out subjects when the head exists
    assert "band_power_vs_channel_mean" in config["heldout"]["eegmat_sample"]
    card = (run / "checkpoint" / "README.md").read_text()
    assert f"pretext: {objective}" in card and "layer 0" in card
    metrics = (run / "metrics.csv").read_text()
    assert "val/effective_rank" in metrics and "val/feature_std" in metrics
    # embed reads the recorded layer, not the last one
    model = brainfm.from_pretrained(run / "checkpoint")
    x = torch.randn(3, 19, 2, 200) * 0.2
    sensors = torch.zeros(19, 8)
    sensors[:, :3] = torch.randn(19, 3) * 0.5        # positions
    sensors[:, 6] = 1.0                              # EEG (brainfm.data.sensors)
    with torch.no_grad():
        first = masked_mean(model.forward_layers(x, sensors.expand(3, -1, -1))[0], None)
        last = masked_mean(model.forward_features(x, sensors.expand(3, -1, -1)), None)
    emb = model.embed(x.numpy(), sensors=sensors.numpy()).windows
    assert np.allclose(emb, first.numpy(), atol=1e-5)
    assert not np.allclose(emb, last.numpy(), atol=1e-3)
    if objective == "latent":
        _check_teacher(run)


def _check_teacher(run):
    """The EMA teacher is in the run's checkpoint (so a resumed run continues from it), it is
    not the student, and the exported model is the student alone."""
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    state = ckpt["state_dict"]
    teacher = {k[len("teacher."):]: v for k, v in state.items() if k.startswith("teacher.")}
    moved = [k for k, v in teacher.items() if v.dtype.is_floating_point and v.numel() > 1
             and "layers" in k]
    assert moved and any(not torch.equal(teacher[k], state[f"model.{k}"]) for k in moved)
    exported = from_pretrained(run / "checkpoint").state_dict()
    assert not any(k.startswith(("teacher", "predictor", "band_head")) for k in exported)


@pytest.mark.parametrize("readout", ["best_layer", "attention"])
def test_probe_readouts_on_real_windows(prepared_stores, tmp_path, readout):
    windows = WindowDataset([prepared_stores[0] / "eegmat"])
    spec = {"model": {"d_model": 32, "n_layers": 3, "n_heads": 4, "d_ff": 64,
                      "positional": "sensor"}}
    pipe = ProbePipeline(spec, tmp_path, readout=readout)
    split = next(iter(LeaveOneSubjectOut(seed=0, val_subjects=3).split(windows.table)))
    pred = pipe.run_fold(windows, split, seed=0)
    assert pred.info["readout"] == readout and len(pred.y_pred) == len(split.test)
    assert np.allclose(pred.y_score.sum(axis=1), 1.0, atol=1e-5)
    if readout == "best_layer":
        assert pred.info["layer"] in (0, 1, 2)
    cached = sorted(p.name for p in tmp_path.glob("*.npy"))
    assert len(cached) == 1 and cached[0].endswith("-layers.npy" if readout == "best_layer"
                                                   else "-tokens.npy")

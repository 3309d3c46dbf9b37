"""Fine-tuning on real windows: learning rates per group, the backbone really trains."""
import lightning as L
import numpy as np
import pytest
import torch

from brainfm.data.loading import WindowDataset, batch_loader
from brainfm.models import CrissCrossTransformer
from brainfm.tasks.classify import FineTuning, balanced_class_weights

pytestmark = pytest.mark.real_data


def _loader(ds, shuffle):
    return batch_loader(ds, 32, shuffle)


def test_one_fold_of_fine_tuning(prepared_stores, tmp_path):
    ds = WindowDataset([prepared_stores[0] / "eegmat"])
    subjects = ds.table["subject"].to_numpy()
    train = ds.subset(np.flatnonzero(np.isin(subjects, ["00", "01", "02", "03"])))
    val = ds.subset(np.flatnonzero(subjects == "04"))
    model = CrissCrossTransformer(d_model=32, n_layers=2, n_heads=4, d_ff=64, dropout=0.0,
                                  positional="sensor", head="classification", n_outputs=2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    task = FineTuning(model, 2, backbone_lr=1e-4, head_lr=1e-3, layer_decay=0.5,
                      class_weights=balanced_class_weights(train.table["label"].to_numpy(), 2))
    lrs = sorted({g["lr"] for g in task.param_groups()})
    assert lrs[-1] == 1e-3 and 1e-4 * 0.5 ** 3 in lrs        # head, then decayed layers
    trainer = L.Trainer(max_epochs=2, accelerator="cpu", logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        default_root_dir=tmp_path)
    trainer.fit(task, _loader(train, True), _loader(val, False))
    assert 0.0 <= trainer.callback_metrics["val/balanced_accuracy"] <= 1.0
    after = model.state_dict()
    assert not torch.equal(before["layers.0.ffn_in.weight"], after["layers.0.ffn_in.weight"])
    preds = trainer.predict(task, _loader(val, False))
    proba = torch.cat([p["proba"] for p in preds])
    assert proba.shape == (len(val), 2) and torch.allclose(proba.sum(1), torch.ones(len(val)))


def test_class_weights_balance_a_skewed_task():
    w = balanced_class_weights(np.array([0] * 80 + [1] * 20), 2)
    assert np.allclose(w, [0.625, 2.5])      # as scikit-learn's class_weight="balanced"

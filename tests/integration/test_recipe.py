"""The default training recipe on real windows: warm-up then cosine per step for every
parameter group, the epoch chosen on a multi-subject validation set and recorded, random
initialisations that follow the seed."""
import lightning as L
import numpy as np
import pytest
import torch

from brainfm.bench.pipelines import NeuralPipeline, ProbePipeline
from brainfm.bench.protocols import LeaveOneSubjectOut
from brainfm.data.loading import WindowDataset, batch_loader
from brainfm.models import CrissCrossTransformer
from brainfm.tasks.classify import FineTuning, selection_metric
from brainfm.tasks.schedules import warmup_cosine

pytestmark = pytest.mark.real_data

TINY = {"d_model": 32, "n_layers": 2, "n_heads": 4, "d_ff": 64, "positional": "sensor"}


@pytest.fixture(scope="module")
def eegmat(prepared_stores):
    return WindowDataset([prepared_stores[0] / "eegmat"])


class _LearningRates(L.Callback):
    def __init__(self):
        self.lrs = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.lrs.append([g["lr"] for g in trainer.optimizers[0].param_groups])


def test_warmup_then_cosine_to_min_lr_for_backbone_and_head(eegmat):
    subjects = eegmat.table["subject"].to_numpy()
    train = eegmat.subset(np.flatnonzero(np.isin(subjects, ["00", "01", "02"])))
    torch.manual_seed(0)
    model = CrissCrossTransformer(**TINY, head="classification", n_outputs=2)
    task = FineTuning(model, 2, backbone_lr=1e-4, head_lr=5e-4, warmup_epochs=1,
                      min_lr=1e-6)
    record = _LearningRates()
    trainer = L.Trainer(max_epochs=4, accelerator="cpu", logger=False, callbacks=[record],
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    trainer.fit(task, batch_loader(train, 32, True, 0))
    lrs = np.array(record.lrs)                                  # (steps, groups)
    per_epoch = len(lrs) // 4
    assert per_epoch >= 3 and lrs.shape[1] == 2
    for g, base in enumerate((1e-4, 5e-4)):
        warm, decay = lrs[:per_epoch, g], lrs[per_epoch:, g]
        assert warm[0] == pytest.approx(base / per_epoch)      # linear warm-up from step 1
        assert np.all(np.diff(warm) > 0) and warm[-1] == pytest.approx(base)
        assert np.all(np.diff(decay) <= 1e-15)                  # then only down
        assert decay[0] == pytest.approx(base, rel=1e-6)        # from the peak
        assert 1e-6 <= decay[-1] < 0.05 * base                  # to near min_lr
        expected = [warmup_cosine(i, len(lrs), per_epoch, base, 1e-6) for i in range(len(lrs))]
        assert lrs[:, g] == pytest.approx(expected, rel=1e-9)   # the schedule, step by step
    assert task.hparams.label_smoothing == 0.1                  # the recipe's default


def test_selection_metric_follows_the_task():
    assert selection_metric("auto", 2) == ("val/auroc", "max")
    assert selection_metric("auto", 4) == ("val/loss", "min")
    with pytest.raises(ValueError, match="binary"):
        selection_metric("auroc", 4)
    with pytest.raises(ValueError, match="select='accuracy'"):
        selection_metric("accuracy", 2)


@pytest.mark.slow
def test_epoch_chosen_on_validation_subjects_is_recorded(eegmat):
    """One LOSO fold of ShallowConvNet over 7 subjects with 3 of them validating (a fifth,
    raised to the minimum): the kept epoch is the one with the best validation AUROC (binary
    task), and the cell records it."""
    seven = eegmat.subset(np.flatnonzero(eegmat.table["subject"].isin(
        [f"{i:02d}" for i in range(7)]).to_numpy()))
    split = next(iter(LeaveOneSubjectOut(val_subjects=0.2, min_val_subjects=3).split(
        seven.table)))
    assert seven.table.iloc[split.val]["subject"].nunique() == 3
    pred = NeuralPipeline("shallow", epochs=3, batch_size=64, backbone_lr=1e-3,
                          head_lr=1e-3).run_fold(seven, split, seed=0)
    info = pred.info
    assert info["selected_on"] == "val/auroc" and len(info["val_curve"]) == 3
    assert info["selected_epoch"] == int(np.argmax(info["val_curve"])) + 1
    assert info["best_val_auroc"] == pytest.approx(max(info["val_curve"]), abs=1e-4)
    assert pred.y_score.shape == (len(split.test), 2)


def test_random_probe_initialisation_follows_the_seed(eegmat, tmp_path):
    probe = ProbePipeline({"model": TINY, "pretrained": False}, tmp_path)
    a, b, again = probe._data(eegmat, 0), probe._data(eegmat, 1), probe._data(eegmat, 0)
    assert a.shape == b.shape and not np.allclose(a, b)        # another initialisation
    assert np.array_equal(a, again)                             # the same seed: the same

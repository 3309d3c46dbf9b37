"""The pretraining corpus on the real recordings: continuous views, per-dataset held-out
subjects, amplitude rules decided per dataset, and the mix a training loader draws."""
import numpy as np
import pytest

from brainfm.data.datamodule import BrainDataModule, amplitude_keep
from brainfm.data.groups import subject_groups
from brainfm.errors import ConfigError
from brainfm.pretrain_run import ensure_stores

from ..helpers import load_configs

pytestmark = pytest.mark.real_data

CORPUS = ["eegmat", "ssvep_exoskeleton", "bonn", "delhi", "eegmmidb_baseline"]


@pytest.fixture(scope="module")
def continuous(data_root, tmp_path_factory):
    root = tmp_path_factory.mktemp("continuous")
    stores = ensure_stores(CORPUS, root, data_root, view="continuous")
    return root, stores


def test_views_cut_the_same_recordings_into_long_non_overlapping_windows(continuous):
    import pandas as pd

    _, stores = continuous
    assert [s.name for s in stores] == [f"{d}.continuous" for d in CORPUS]
    for store in stores:
        w = pd.read_parquet(store / "windows.parquet")
        name = store.name.split(".")[0]
        assert set(w["dataset"]) == {name}            # the dataset keeps its name
        length = 5.0 if name == "delhi" else 10.0     # delhi's segments are 5.12 s
        assert set(w["n_samples"]) == {int(length * 200)}, name
        assert (w["label"] == -1).all()               # a view drops the task's labels
        for _, rec in w.groupby("key"):
            gaps = np.diff(np.sort(rec["onset_s"].to_numpy()))
            assert np.allclose(gaps, length), name    # consecutive, never overlapping
    # the SSVEP task view cuts 5 s trials; its continuous view covers the whole sessions
    ssvep = pd.read_parquet(stores[1] / "windows.parquet")
    assert len(ssvep) * 10.0 > 3600


def test_unknown_view_and_view_keys_are_refused():
    spec, _ = load_configs("eegmat")
    with pytest.raises(ConfigError, match="no view 'pretraining'"):
        spec.with_view("pretraining")
    spec.views = {"odd": {"window": {}}}
    with pytest.raises(ConfigError, match="unknown key"):
        spec.with_view("odd")


def test_every_dataset_has_held_out_subjects(continuous):
    root, stores = continuous
    dm = BrainDataModule([str(s) for s in stores], val_fraction=0.15, seed=3)
    dm.setup()
    train, val = dm.splits["train"].table, dm.splits["val"].table
    assert set(val["dataset"]) == set(CORPUS)
    assert not set(subject_groups(train)) & set(subject_groups(val))
    groups = subject_groups(val)
    n_val = {d: len(set(groups[(val["dataset"] == d).to_numpy()])) for d in CORPUS}
    assert n_val["eegmmidb_baseline"] == 16 and n_val["ssvep_exoskeleton"] == 2
    assert n_val["eegmat"] == 5 and n_val["bonn"] == 75      # recordings where no subjects


def test_relative_amplitude_rule_keeps_seizures_and_bci2000(continuous):
    from brainfm.data.loading import WindowDataset

    _, stores = continuous
    table = WindowDataset(stores).table
    seizure = table["dataset"].eq("bonn") & table["recording"].str.contains("/E_S/|S0",
                                                                            regex=True)
    assert seizure.sum() > 100
    cbramod, report_abs = amplitude_keep(table, max_abs=1.0)
    # CBraMod's 100 uV rule: almost every BCI2000 and intracranial window goes
    assert report_abs["eegmmidb_baseline"]["rejected"] > 0.9 * report_abs[
        "eegmmidb_baseline"]["windows"]
    assert not cbramod[seizure.to_numpy()].any()
    keep, report = amplitude_keep(table, max_abs_relative=15.0)
    assert keep[seizure.to_numpy()].mean() > 0.95
    for name, rep in report.items():
        assert rep["rejected"] <= 0.02 * rep["windows"], (name, rep)
    # the rule still removes a gross artefact: a window 100x its dataset's median peak
    spiked = table.copy()
    spiked.loc[spiked.index[0], "max_abs"] = 100 * spiked["max_abs"].median()
    assert not amplitude_keep(spiked, max_abs_relative=15.0)[0][0]


def test_training_loader_draws_the_planned_mix(continuous):
    _, stores = continuous
    dm = BrainDataModule([str(s) for s in stores], batch_size=16, mix="equal", seed=0)
    dm.setup()
    assert dm.mixture == pytest.approx({d: 0.2 for d in CORPUS})
    names = dm.dataset_names
    drawn = {}
    for batch in dm.train_dataloader():
        codes = set(batch["dataset"].tolist())
        assert len(codes) == 1 and batch["channel_mask"].all()   # one dataset, no padding
        name = names[codes.pop()]
        drawn[name] = drawn.get(name, 0) + 1
    total = sum(drawn.values())
    assert all(abs(n / total - 0.2) <= 1 / total for n in drawn.values()), drawn

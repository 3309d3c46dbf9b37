"""Every shared dataset preps through the same configs brainfm-prep uses."""
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from brainfm.data.store import CorpusStore

pytestmark = pytest.mark.real_data


def test_ssvep_12_subjects_32_balanced_trials_per_session(prepared_stores):
    root, summaries = prepared_stores
    s = summaries["ssvep_exoskeleton"]
    assert s.failed == 0 and s.subjects == 12
    store = CorpusStore(root / "ssvep_exoskeleton")
    w = store.windows
    per_session = w.groupby(["subject", "session"]).size()
    assert len(per_session) == 32 and (per_session == 32).all()
    counts = w.groupby(["subject", "session", "label_name"]).size()
    assert (counts == 8).all() and set(w["label_name"]) == {"rest", "13Hz", "17Hz", "21Hz"}
    assert (w["n_samples"] == 1000).all() and (w["n_channels"] == 8).all()
    assert w.groupby("subject")["session"].nunique().to_dict()["10"] == 6


def test_eegmat_36_subjects_rest_and_task(prepared_stores):
    root, summaries = prepared_stores
    s = summaries["eegmat"]
    assert s.failed == 0 and s.subjects == 36
    w = CorpusStore(root / "eegmat").windows
    both = w.groupby("subject")["label_name"].nunique()
    assert len(both) == 36 and (both == 2).all()
    assert s.windows_per_class == {"arithmetic": 432, "rest": 432}


def test_muse_both_marker_columns_prep(prepared_stores):
    root, summaries = prepared_stores
    s = summaries["muse_p300"]
    assert s.failed == 0 and s.subjects == 5
    recs = CorpusStore(root / "muse_p300").recordings
    markers = {json.loads(p)["marker_column"] for p in recs["provenance"]}
    assert markers == {"Marker", "Marker0"}
    assert s.windows_per_class["target"] < s.windows_per_class["non-target"]


def test_epilepsy_sets_have_no_subjects(prepared_stores):
    root, summaries = prepared_stores
    assert summaries["bonn"].windows_per_class == {"healthy": 800, "interictal": 800,
                                                   "ictal": 400}
    assert summaries["delhi"].windows_per_class == {"ictal": 50, "interictal": 50,
                                                    "preictal": 50}
    for name in ("bonn", "delhi"):
        w = CorpusStore(root / name).windows
        assert w["subject"].isna().all() and w["recording"].nunique() == summaries[name].done


def test_manifest_tables_and_provenance(prepared_stores):
    root, _ = prepared_stores
    store = CorpusStore(root / "eegmat")
    recs = store.recordings
    assert set(recs["status"]) == {"ok"} and len(recs) == 72
    row = recs.iloc[0]
    assert row["orig_sfreq"] == 250.0 and row["sfreq"] == 200.0
    steps = [s["step"] for s in json.loads(row["provenance"])["steps"]]
    assert steps[:2] == ["channels", "template_positions"] and "filter" in steps
    assert store.meta["standardise"]["l_freq"] == 0.3 and store.meta["dtype"] == "float16"
    for key in recs["key"]:
        assert store.sensors(key).shape == (19, 8)


def test_windows_finite_float32_at_target_rate(prepared_stores):
    import torch

    from brainfm.data.datamodule import BrainDataModule

    root, _ = prepared_stores
    names = ["eegmat", "ssvep_exoskeleton", "muse_p300", "bonn", "delhi"]
    dm = BrainDataModule(names, store_root=root, batch_size=256, val_fraction=0.0)
    dm.setup()
    for batch in dm.train_dataloader():
        assert batch["x"].dtype == torch.float32 and batch["x"].shape[-1] == 200
        assert bool(batch["x"].isfinite().all())
    assert all(CorpusStore(root / n).sfreq == 200.0 for n in names)


def test_rerun_skips_finished_recordings(prepared_stores, data_root):
    from brainfm.data.prep import prepare

    from ..helpers import load_configs

    root, _ = prepared_stores
    spec, std = load_configs("delhi")
    again = prepare(spec, std, data_root, root / "delhi", progress=False)
    assert again.skipped == 150 and again.done == 0


def test_changed_settings_refuse_to_mix(prepared_stores, data_root):
    from brainfm.data.prep import prepare
    from brainfm.data.store import StoreError

    from ..helpers import load_configs

    root, _ = prepared_stores
    spec, std = load_configs("delhi", ["standardise.h_freq=40"])
    with pytest.raises(StoreError, match="other settings"):
        prepare(spec, std, data_root, root / "delhi", progress=False)


def test_cli_prep_on_embedded_sample_and_user_folder(tmp_path, data_root):
    """brainfm-prep as users call it: the embedded sample, then a 'folder' dataset."""
    cli = [sys.executable, "-c", "from brainfm.cli import prep_main; prep_main()"]
    out = subprocess.run(cli + ["dataset=eegmat_sample", f"store_root={tmp_path}",
                                "progress=false"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "8 done" in out.stdout and "arithmetic=48, rest=48" in out.stdout
    folder = data_root / "ssvep_exoskeleton"
    out = subprocess.run(cli + [
        "dataset=folder", f"dataset.path={folder}", "dataset.name=my_ssvep",
        "dataset.include=['subject0[12]/*_raw.fif']",
        "dataset.path_regex='subject(?P<subject>\\d+)/'",
        "dataset.windows.length_s=10", "dataset.windows.reject_max_abs=null",
        f"store_root={tmp_path}", "progress=false"],
        capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "4 done" in out.stdout and "2 subjects" in out.stdout
    store = CorpusStore(tmp_path / "my_ssvep")
    assert (store.windows["label"] == -1).all() and (store.windows["n_samples"] == 2000).all()


def test_cli_bad_dataset_path_is_explained(tmp_path):
    cli = [sys.executable, "-c", "from brainfm.cli import prep_main; prep_main()"]
    out = subprocess.run(cli + ["dataset=folder", f"dataset.path={tmp_path}/nowhere",
                                f"store_root={tmp_path}"], capture_output=True, text=True)
    assert out.returncode == 2 and "does not exist" in out.stderr and "data_root" in out.stderr


def test_growing_a_store_repacks_to_what_a_fresh_prep_gives(tmp_path, data_root):
    """Prep part of a dataset, then all of it: the re-packed store equals a one-shot prep,
    and stale packs and shards are gone."""
    from brainfm.data.prep import prepare

    from ..helpers import load_configs

    spec, std = load_configs("delhi")
    grown, fresh = tmp_path / "grown", tmp_path / "fresh"
    prepare(spec, std, data_root, grown, limit=60, progress=False, n_jobs=1)
    first_packs = set((grown / "packs").iterdir())
    again = prepare(spec, std, data_root, grown, progress=False, n_jobs=2)
    assert again.skipped == 60 and again.done == 90
    prepare(spec, std, data_root, fresh, progress=False, n_jobs=1)
    a, b = CorpusStore(grown), CorpusStore(fresh)
    assert len(a) == len(b) == 150
    for i in (0, 59, 60, 149):
        assert np.array_equal(a.window(i), b.window(i))
    assert not (set((grown / "packs").iterdir()) & first_packs)
    assert not list((grown / "shards").glob("*.npy"))

"""brainfm-embed on real recordings: a folder of files and a prepared dataset store, the
Parquet + .npy outputs, and the refusals (unprepared dataset, store standardised otherwise)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

import brainfm
from brainfm.embed import embed_dataset
from brainfm.embed.command import main
from brainfm.models.criss_cross import CrissCrossTransformer
from brainfm.paths import sample_root

from ..helpers import load_configs

pytestmark = pytest.mark.real_data

SAMPLE = sample_root() / "eegmat"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    _, std = load_configs("eegmat_sample")
    torch.manual_seed(0)
    model = CrissCrossTransformer(d_model=16, n_layers=1, n_heads=2, d_ff=32, dropout=0.0)
    return brainfm.save_pretrained(model, tmp_path_factory.mktemp("ck") / "ck",
                                   datasets=["eegmat_sample"], standardise=std.as_dict(),
                                   sfreq=200.0, window_s=5.0, sensor_types=["eeg"])


def test_folder_of_recordings(checkpoint, tmp_path, capsys):
    out = tmp_path / "emb"
    assert main([f"checkpoint={checkpoint}", f"input={SAMPLE}", f"out={out}",
                 "batch_size=5", "progress=false"]) == 0
    printed = capsys.readouterr()
    assert "windows of 8 recording(s)" in printed.out and "brainfm embed" not in printed.err
    table = pd.read_parquet(out / "windows.parquet")
    windows = np.load(out / "windows.npy")
    assert len(table) == len(windows) and windows.shape[1] == 16
    assert list(table["id"]) == list(range(len(table)))
    for col in ("recording", "subject", "start_s", "end_s", "label", "annotations", "max_abs"):
        assert col in table
    assert ((table["end_s"] - table["start_s"]) == 5.0).all()
    recs = pd.read_parquet(out / "recordings.parquet")
    per_rec = np.load(out / "recordings.npy")
    assert len(recs) == 8 == len(per_rec)
    first = table["recording"] == recs["recording"][0]
    assert np.allclose(per_rec[0], windows[first.to_numpy()].mean(axis=0))
    info = json.loads((out / "embed.json").read_text())
    assert info["input_kind"] == "files" and info["n_windows"] == len(table)


def test_dataset_name_reads_its_store_with_labels(checkpoint, sample_store_root, tmp_path, capsys):
    out = tmp_path / "emb"
    assert main([f"checkpoint={checkpoint}", "input=eegmat_sample", f"out={out}",
                 f"store_root={sample_store_root}", "progress=true"]) == 0
    assert "brainfm embed eegmat_sample" in capsys.readouterr().err  # the progress bar
    table = pd.read_parquet(out / "windows.parquet")
    assert set(table["label_name"]) == {"rest", "arithmetic"}
    assert set(table["dataset"]) == {"eegmat_sample"} and table["subject"].notna().all()
    # the store's windows are the files' windows prepared the same way: same embeddings
    files = embed_dataset(checkpoint, SAMPLE, progress=False)
    a = np.load(out / "windows.npy")
    assert a.shape == files.windows.shape
    assert np.abs(a - files.windows).max() < 0.05  # float16 store vs float32 in memory


def test_store_standardised_otherwise_is_refused(sample_store_root, tmp_path, capsys):
    _, std = load_configs("eegmat_sample", ["standardise.h_freq=40.0"])
    ck = brainfm.save_pretrained(CrissCrossTransformer(d_model=16, n_layers=1, n_heads=2,
                                                       d_ff=32), tmp_path / "ck",
                                 standardise=std.as_dict(), sfreq=200.0)
    assert main([f"checkpoint={ck}", "input=eegmat_sample", f"out={tmp_path / 'e'}",
                 f"store_root={sample_store_root}"]) == 2
    err = capsys.readouterr().err
    assert "standardised otherwise than the checkpoint expects (h_freq: store 75.0 vs " \
           "checkpoint 40.0)" in err


def test_unprepared_dataset_says_how_to_prepare_it(checkpoint, tmp_path, capsys):
    assert main([f"checkpoint={checkpoint}", "input=eegmat", f"out={tmp_path / 'e'}",
                 f"store_root={tmp_path}"]) == 2
    assert "brainfm-prep dataset=eegmat" in capsys.readouterr().err


def test_help_and_bad_arguments(capsys):
    assert main(["--help"]) == 0
    assert "Per-window and per-recording embeddings" in capsys.readouterr().out
    assert main(["checkpoint=x", "input=y"]) == 2
    assert "missing out=" in capsys.readouterr().err
    assert main(["checkpoint=x", "input=y", "out=z", "progress=maybe"]) == 2
    assert "progress='maybe': use true or false" in capsys.readouterr().err


def test_fixed_montage_checkpoint_gets_its_channel_order_from_store_and_files(sample_store_root,
                                                                              tmp_path):
    """An ACPE checkpoint whose channel set is the sample's in another order: store windows
    are reordered by name as prepare orders the files, so both give the same embeddings."""
    from brainfm.data.store import CorpusStore

    store = CorpusStore(sample_store_root / "eegmat_sample")
    key = store.recordings.loc[store.recordings["relpath"] == "Subject00_1.edf", "key"].iloc[0]
    channels = store.ch_names(key)[::-1]
    _, std = load_configs("eegmat_sample")
    torch.manual_seed(0)
    model = CrissCrossTransformer(d_model=16, n_layers=1, n_heads=2, d_ff=32, dropout=0.0,
                                  positional="acpe")
    ck = brainfm.save_pretrained(model, tmp_path / "ck", standardise=std.as_dict(),
                                 sfreq=200.0, window_s=5.0, sensor_types=["eeg"],
                                 channels=channels)
    one = tmp_path / "one"
    one.mkdir()
    (one / "Subject00_1.edf").symlink_to(SAMPLE / "Subject00_1.edf")
    from_store = embed_dataset(ck, "eegmat_sample", store_root=sample_store_root, progress=False)
    from_file = embed_dataset(ck, one, progress=False)
    rows = (from_store.table["recording"] == "Subject00_1.edf").to_numpy()
    assert rows.sum() == len(from_file.windows) == 12
    assert np.abs(from_store.windows[rows] - from_file.windows).max() < 0.05
    # in the channel order of the recording instead, the embeddings differ: order matters
    plain = CrissCrossTransformer(d_model=16, n_layers=1, n_heads=2, d_ff=32, dropout=0.0,
                                  positional="acpe")
    plain.load_state_dict(model.state_dict())
    x = store.recording_windows(key)[:2].astype(np.float32)
    assert np.abs(plain.embed(x).windows - from_store.windows[rows][:2]).max() > 1e-3


def test_each_file_is_prepared_once(checkpoint, monkeypatch):
    """Standardising is the costly step of embedding files: each recording goes through the
    checkpoint's preparation exactly once (it was run again inside model.embed)."""
    from brainfm.models import contract

    prepared = []
    real = contract.prepare_recording

    def counting(recording, *args, **kwargs):
        prepared.append(recording.source)
        return real(recording, *args, **kwargs)

    monkeypatch.setattr(contract, "prepare_recording", counting)
    result = embed_dataset(checkpoint, SAMPLE, progress=False)
    assert len(prepared) == len(result.recordings) == 8
    assert len(set(prepared)) == 8

"""model.prepare on real recordings: a 64-channel eegmmidb recording brought to an
eegmat-trained fixed-montage (ACPE) checkpoint, missing channels refused or interpolated,
MEG refused for an EEG montage, and any montage taken by a sensor-encoded checkpoint."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import brainfm
from brainfm.data.standardise import standardise
from brainfm.errors import RecordingError
from brainfm.models.criss_cross import CrissCrossTransformer

from ..helpers import load_configs

pytestmark = pytest.mark.real_data


@pytest.fixture(scope="module")
def eegmat_contract(data_root):
    """What an eegmat pretraining run records: eegmat's standardisation and, read from a real
    eegmat recording after it, its channel set in order."""
    _, std = load_configs("eegmat")
    rec = standardise(brainfm.read_recording(data_root / "eegmat" / "Subject00_1.edf"), std)
    return dict(datasets=["eegmat"], standardise=std.as_dict(), sfreq=200.0, window_s=5.0,
                sensor_types=["eeg"], channels=list(rec.ch_names))


def _checkpoint(tmp_path, positional, contract, name):
    torch.manual_seed(0)
    model = CrissCrossTransformer(d_model=16, n_layers=1, n_heads=2, d_ff=32, dropout=0.0,
                                  positional=positional)
    return brainfm.from_pretrained(brainfm.save_pretrained(model, tmp_path / name,
                                                           **contract))


@pytest.fixture(scope="module")
def acpe(tmp_path_factory, eegmat_contract):
    return _checkpoint(tmp_path_factory.mktemp("ck"), "acpe", eegmat_contract, "acpe")


@pytest.fixture(scope="module")
def mmidb(data_root):
    return brainfm.read_recording(data_root / "eegmmidb_baseline" / "S002" / "S002R02.edf")


def test_64_channel_recording_is_brought_to_the_eegmat_channel_set(acpe, mmidb,
                                                                   eegmat_contract):
    assert mmidb.n_channels == 64 and mmidb.sfreq == 160.0
    out = acpe.prepare(mmidb)
    channels = eegmat_contract["channels"]
    assert out.ch_names == channels and len(channels) == 19
    assert out.sfreq == 200.0 and set(out.units) == {"100 uV"}
    # the same as standardising those channels by hand: prepare reuses the one standardiser
    _, std = load_configs("eegmat")
    by_hand = standardise(mmidb.pick([mmidb.ch_names.index(n) for n in channels]), std)
    assert np.array_equal(out.data, by_hand.data)
    steps = [s["step"] for s in out.provenance["steps"]]
    assert "resample" in steps and steps[-1] == "contract"


def test_missing_channels_are_listed_or_interpolated(acpe, mmidb):
    full = acpe.prepare(mmidb)
    lacking = mmidb.pick([i for i, n in enumerate(mmidb.ch_names) if n not in ("Cz", "O1")])
    with pytest.raises(RecordingError, match=r"lacks 2 of the checkpoint's 19 channels: "
                                             r"O1, Cz.*allow_interpolation=True"):
        acpe.prepare(lacking)
    filled = acpe.prepare(lacking, allow_interpolation=True)
    assert filled.ch_names == full.ch_names
    for name in ("Cz", "O1"):  # spherical splines from the 45 other channels track the truth
        i = full.ch_names.index(name)
        assert np.corrcoef(full.data[i], filled.data[i])[0, 1] > 0.8
    kept = full.ch_names.index("Fp1")
    assert np.array_equal(full.data[kept], filled.data[kept])
    assert any(s["step"] == "interpolate" and s["channels"] == ["O1", "Cz"]
               for s in filled.provenance["steps"])


def test_allow_interpolation_set_at_load(tmp_path, eegmat_contract, mmidb):
    path = tmp_path / "ck"
    brainfm.save_pretrained(CrissCrossTransformer(d_model=16, n_layers=1, n_heads=2, d_ff=32,
                                                  positional="acpe"), path, **eegmat_contract)
    model = brainfm.from_pretrained(path, allow_interpolation=True)
    lacking = mmidb.pick([i for i, n in enumerate(mmidb.ch_names) if n != "Pz"])
    assert model.prepare(lacking).ch_names == eegmat_contract["channels"]


def test_meg_is_refused_by_an_eeg_montage_checkpoint(acpe, data_root):
    meg = brainfm.read_recording(
        data_root / "format_zoo/fieldtrip/ft_test_data/neuromag306/raw_v7.mat")
    with pytest.raises(RecordingError, match="MEG data .*magnetic fields are not scalp "
                                             "potentials.*sensor-encoded checkpoint"):
        acpe.prepare(meg)


def test_sensor_encoded_checkpoint_takes_any_montage(tmp_path, eegmat_contract, mmidb):
    contract = {k: v for k, v in eegmat_contract.items() if k != "channels"}
    model = _checkpoint(tmp_path, "sensor", contract, "sensor")
    out = model.prepare(mmidb)
    assert out.n_channels == 64 and out.sfreq == 200.0
    emb = model.embed(mmidb, batch_size=4)
    assert emb.windows.shape == (6, 16) and np.isfinite(emb.windows).all()
    assert np.allclose(emb.recording, emb.windows.mean(axis=0))
    assert np.allclose(emb.start_s, np.arange(6) * 5.0) and np.allclose(emb.end_s - emb.start_s, 5)


def test_mne_raw_is_prepared_like_the_file(acpe, data_root):
    import mne

    path = data_root / "eegmmidb_baseline" / "S003" / "S003R01.edf"
    raw = mne.io.read_raw_edf(path, preload=True, verbose="error")
    from_raw = acpe.prepare(raw)
    from_file = acpe.prepare(brainfm.read_recording(path))
    assert from_raw.ch_names == from_file.ch_names
    assert np.allclose(from_raw.data, from_file.data, atol=1e-5)


def test_embed_of_a_prepared_recording_matches_embed_of_its_windows(acpe, mmidb):
    rec = acpe.prepare(mmidb)
    emb = acpe.embed(rec)
    windows = rec.data[:, :6 * 1000].reshape(19, 6, 1000).transpose(1, 0, 2)
    again = acpe.embed(windows, batch_size=2)
    assert np.allclose(emb.windows, again.windows, atol=1e-5)


def test_a_prepared_recording_is_not_prepared_twice_nor_for_another_checkpoint(
        acpe, mmidb, tmp_path, eegmat_contract):
    ready = acpe.prepare(mmidb)
    assert acpe.prepare(ready) is ready
    other = _checkpoint(tmp_path, "acpe", {**eegmat_contract, "standardise": {
        **eegmat_contract["standardise"], "h_freq": 40.0}}, "other")
    with pytest.raises(RecordingError, match="prepared for another checkpoint"):
        other.prepare(ready)

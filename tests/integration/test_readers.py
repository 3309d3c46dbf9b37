"""Every shared recording format reads into a Recording with canonical channels."""
import numpy as np
import pytest

import brainfm
from brainfm.data.readers import READERS, RECORDING_SUFFIXES
from brainfm.embed import core as embed_core
from brainfm.data.sensors import sensor_features
from brainfm.data.standardise import standardise
from brainfm.errors import RecordingError

pytestmark = pytest.mark.real_data

ZOO = {  # file -> (n_channels, sfreq, expected types subset)
    "EDF/test_edf_overlapping_annotations.edf": (64, 128.0, {"eeg": 64}),
    "EDF/test_reduced.edf": (139, 512.0, {"stim": 1}),
    "BDF/test_bdf_stim_channel.bdf": (4, 500.0, {"eeg": 3, "stim": 1}),
    "EEGLAB/test_raw.set": (32, 128.0, {"eeg": 32}),
    "NihonKohden/MB0400FU.EEG": (25, 200.0, {}),
    "Persyst/sub-pt1_ses-02_task-monitor_acq-ecog_run-01_clip2.lay": (83, 200.0, {"ecg": 2}),
    "fieldtrip/ft_test_data/neuromag306/raw_v7.mat": (373, None, {"mag": 102, "grad": 204}),
    "fieldtrip/ft_test_data/neuromag306/epoched_v7.mat": (373, None, {}),
    "mne_misc/ecog/sample_ecog_ieeg.fif": (394, 160.0, {"ecog": 320, "seeg": 74}),
    "mne_misc/ERP_CORE_P3/sub-015_ses-P3_task-P3_ave.fif": (30, 128.0, {"eeg": 30}),
}


@pytest.mark.parametrize("rel", sorted(ZOO))
def test_format_zoo_reads(data_root, rel):
    n_ch, sfreq, types = ZOO[rel]
    rec = brainfm.read_recording(data_root / "format_zoo" / rel)
    assert rec.n_channels == n_ch
    if sfreq:
        assert rec.sfreq == sfreq
    counts = rec.type_counts()
    for kind, n in types.items():
        if kind in ("mag", "grad"):
            assert counts.get(kind, 0) > 0
        else:
            assert counts.get(kind) == n, counts
    assert rec.data.dtype == np.float32 and np.isfinite(rec.data).all()
    assert rec.provenance["source"].endswith(rel.split("/")[-1])


def test_every_zoo_file_is_covered(data_root):
    """A new file in format_zoo must get a test entry (or be the hypnogram)."""
    suffixes = (".edf", ".bdf", ".set", ".EEG", ".lay", ".mat", ".fif")
    found = {p.relative_to(data_root / "format_zoo").as_posix()
             for p in (data_root / "format_zoo").rglob("*") if p.suffix in suffixes}
    evoked = {f for f in found if "ERP_CORE" in f}
    assert found - evoked - set(ZOO) == {"EDF/SC4001EC-Hypnogram.edf"}
    for rel in sorted(evoked):
        assert brainfm.read_recording(data_root / "format_zoo" / rel).n_channels == 30


def test_one_table_gives_every_format_its_reader(data_root):
    """Each zoo file's ending is in the suffix table that read_recording and embed share."""
    for rel in ZOO:
        assert rel.lower().endswith(RECORDING_SUFFIXES), rel
    evoked = brainfm.read_recording(data_root / "format_zoo" / "mne_misc" / "ERP_CORE_P3" /
                                    "sub-015_ses-P3_task-P3_ave.fif")
    assert evoked.provenance["reader"] == "mne.read_evokeds"   # '_ave.fif' wins over '.fif'
    assert brainfm.read_recording(data_root / "format_zoo" / "mne_misc" / "ecog" /
                                  "sample_ecog_ieeg.fif").provenance["reader"].startswith("mne (")
    assert embed_core.RECORDING_SUFFIXES is RECORDING_SUFFIXES
    assert ".zip" in READERS and ".zip" not in RECORDING_SUFFIXES  # an archive is many


def test_hypnogram_gives_clear_error_and_reads_as_annotations(data_root):
    path = data_root / "format_zoo" / "EDF" / "SC4001EC-Hypnogram.edf"
    with pytest.raises(RecordingError, match="only annotations") as err:
        brainfm.read_recording(path)
    assert str(path) in str(err.value) and "read_annotations" in str(err.value)
    ann = brainfm.read_annotations(path)
    assert ann.counts()["Sleep stage 2"] > 0


def test_edf_annotations_and_eeg_names(data_root):
    rec = brainfm.read_recording(data_root / "format_zoo/EDF/test_edf_overlapping_annotations.edf")
    assert {"T0", "T1", "T2"} <= set(rec.annotations.counts())
    assert rec.ch_names[:3] == ["FC5", "FC3", "FC1"] and not rec.missing_positions


def test_meg_sensor_geometry(data_root):
    rec = brainfm.read_recording(data_root / "format_zoo/fieldtrip/ft_test_data/neuromag306/raw_v7.mat")
    std = standardise(rec)
    types = np.array(std.ch_types)
    assert set(types) == {"mag", "grad", "eeg"}
    feats = sensor_features(std.ch_types, std.positions, std.orientations)
    meg = np.isin(types, ["mag", "grad"])
    assert np.allclose(np.linalg.norm(feats[meg, 3:6], axis=1), 1.0, atol=1e-4)
    assert np.all(feats[~meg, 3:6] == 0)
    assert feats[:, 7].all()                       # every kept sensor has a position
    # the planar gradiometer pair and the magnetometer of one site share a position
    site = [std.ch_names.index(n) for n in ("MEG 0113", "MEG 0112", "MEG 0111")]
    assert np.allclose(feats[site[0], :3], feats[site[2], :3])
    # magnetometer normals point out of the head (away from the sensor-array centre)
    mags = feats[types == "mag"]
    radial = mags[:, :3] - mags[:, :3].mean(axis=0)
    radial /= np.linalg.norm(radial, axis=1, keepdims=True)
    assert np.median(np.sum(radial * mags[:, 3:6], axis=1)) > 0.8
    assert std.units[list(types).index("grad")] == "1000 fT/cm"


def test_ieeg_positions_from_file(data_root):
    rec = brainfm.read_recording(data_root / "format_zoo/mne_misc/ecog/sample_ecog_ieeg.fif")
    assert not rec.missing_positions
    feats = sensor_features(rec.ch_types, rec.positions, rec.orientations)
    assert set(np.unique(feats[:, 6]).astype(int)) == {4, 5}     # seeg and ecog ids


def test_eegmat_types_by_name(data_root):
    rec = brainfm.read_recording(data_root / "eegmat" / "Subject00_1.edf")
    assert rec.ch_types[rec.ch_names.index("ECG ECG")] == "ecg"
    assert rec.ch_types[rec.ch_names.index("A2-A1")] == "misc"
    assert "T7" in rec.ch_names and "T3" not in rec.ch_names
    assert rec.type_counts()["eeg"] == 19 and not [m for m in rec.missing_positions
                                                   if rec.ch_types[rec.ch_names.index(m)] == "eeg"]


def test_ssvep_events_from_sibling_file_and_implausible_positions(data_root):
    path = sorted((data_root / "ssvep_exoskeleton" / "subject01").glob("*_raw.fif"))[0]
    rec = brainfm.read_recording(path)
    assert rec.annotations.counts() == {"1": 8, "2": 8, "3": 8, "4": 8}
    assert len(rec.provenance["implausible_file_positions"]) == 8
    assert all(s.startswith("template:") for s in rec.position_source)


@pytest.mark.parametrize("marker", ["Marker", "Marker0"])
def test_muse_csv_both_marker_columns(data_root, marker):
    files = sorted((data_root / "muse_p300").rglob("*.csv"))
    path = next(p for p in files if p.read_text().split("\n", 1)[0].endswith("," + marker))
    rec = brainfm.read_recording(path)
    assert rec.provenance["marker_column"] == marker
    assert rec.ch_names[:4] == ["TP9", "AF7", "AF8", "TP10"]
    assert rec.ch_types == ["eeg"] * 4 + ["misc"]
    assert rec.sfreq == 256.0 and set(rec.annotations.counts()) <= {"1", "2"}


def test_epilepsy_archives(data_root):
    bonn = brainfm.read_recording(data_root / "epilepsy_segments/Bonn_EEG_dataset.zip",
                                  member="E_S/S001.txt")
    assert bonn.n_times == 4097 and bonn.sfreq == 173.61
    assert bonn.provenance["segment_class"] == "S"
    delhi = brainfm.read_recording(data_root / "epilepsy_segments/Delhi_dataset.zip",
                                   member="EEG Epilepsy Datasets/ictal/ictal1.mat")
    assert delhi.n_times == 1024 and delhi.sfreq == 200.0
    with pytest.raises(RecordingError, match="member="):
        brainfm.read_recording(data_root / "epilepsy_segments/Delhi_dataset.zip")


def test_from_array_and_to_mne_round_trip(data_root):
    rec = brainfm.read_recording(data_root / "eegmat" / "Subject03_2.edf")
    again = brainfm.from_array(rec.data, rec.sfreq, rec.ch_names, rec.ch_types)
    assert again.ch_names == rec.ch_names and np.array_equal(again.data, rec.data)
    raw = rec.to_mne()
    assert raw.ch_names == rec.ch_names and np.allclose(raw.get_data(), rec.data)

"""Sensor features: positions flagged when missing, never silently at the origin."""
import numpy as np
import pytest

from brainfm import from_array
from brainfm.data.sensors import SENSOR_TYPE_IDS, sensor_features


def test_template_positions_for_10_05_names():
    rec = from_array(np.zeros((3, 100)), 100.0, ["EEG Fp1", "Cz", "XYZ"])
    assert rec.position_source[:2] == ["template:fsaverage_1005"] * 2
    assert rec.missing_positions == ["XYZ"]
    feats = sensor_features(rec.ch_types, rec.positions, rec.orientations)
    assert feats.shape == (3, 8)
    assert feats[0, 7] == 1 and feats[2, 7] == 0          # has_position flag
    assert np.all(feats[2, :3] == 0) and feats[2, 6] == SENSOR_TYPE_IDS["eeg"]
    assert 0.5 < np.linalg.norm(feats[0, :3]) < 1.5         # normalised by head radius


def test_non_10_05_montage_is_not_matched_by_coincidence():
    """BioSemi-style A1..B32 names: A1 is not the ear lobe, so nothing is placed."""
    names = [f"{c}{i}" for c in "AB" for i in range(1, 17)]
    rec = from_array(np.zeros((32, 100)), 100.0, names)
    assert len(rec.missing_positions) == 32


def test_non_neural_type_has_no_sensor_id():
    with pytest.raises(ValueError, match="ecg"):
        sensor_features(["eeg", "ecg"], np.zeros((2, 3)), np.zeros((2, 3)))

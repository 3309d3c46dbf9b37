"""The sensor-encoded backbone on real MEG and EEG geometry (the Neuromag clip)."""
import numpy as np
import pytest
import torch

import brainfm
from brainfm.data.sensors import sensor_features
from brainfm.data.standardise import standardise
from brainfm.data.windows import fixed_windows, to_patches
from brainfm.models import CrissCrossTransformer

pytestmark = pytest.mark.real_data


def test_meg_and_eeg_in_one_forward_pass(data_root):
    rec = brainfm.read_recording(
        data_root / "format_zoo/fieldtrip/ft_test_data/neuromag306/raw_v7.mat")
    std = standardise(rec)
    x = torch.from_numpy(to_patches(fixed_windows(std, 5.0).data, 200))      # (1, 363, 5, 200)
    sensors = torch.from_numpy(sensor_features(std.ch_types, std.positions,
                                               std.orientations))[None]
    model = CrissCrossTransformer(d_model=32, n_layers=2, n_heads=4, d_ff=64,
                                  positional="sensor", dropout=0.0).eval()
    out = model.forward_features(x, sensors)
    assert out.shape == (1, 363, 5, 32) and bool(out.isfinite().all())
    # channel order does not matter: shuffle the 363 sensors, get the same features back
    perm = torch.from_numpy(np.random.default_rng(0).permutation(363))
    assert torch.allclose(model.forward_features(x[:, perm], sensors[:, perm]), out[:, perm],
                          atol=1e-4)

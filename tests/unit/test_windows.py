"""Fixed and event-locked windows, rejection, and patching."""
import numpy as np
import pytest

from brainfm import Annotations, from_array
from brainfm.data.windows import event_windows, fixed_windows, to_patches


def _ramp(n_ch=3, n=2000, sfreq=200.0):
    data = np.tile(np.arange(n, dtype=np.float32), (n_ch, 1))
    return from_array(data, sfreq, ["Fp1", "Cz", "Oz"][:n_ch], montage=None)


def test_fixed_windows_count_stride_and_content():
    rec = _ramp()
    ws = fixed_windows(rec, 2.0)          # 400 samples, 5 windows, no overlap
    assert ws.data.shape == (5, 3, 400)
    assert ws.data[1, 0, 0] == 400
    ws = fixed_windows(rec, 2.0, stride_s=1.0)
    assert len(ws) == 9 and ws.onset[1] == 1.0


def test_amplitude_rejection():
    rec = _ramp()
    rec.data[:] = 0.1
    rec.data[1, 450] = 5.0                # inside window 1 only
    ws = fixed_windows(rec, 2.0, reject_max_abs=1.0)
    assert len(ws) == 4 and ws.n_rejected == 1 and ws.rejected_onsets == [2.0]


def test_event_windows_labels_and_positions():
    rec = _ramp()
    rec.annotations = Annotations([1.0, 3.0, 9.5, 4.0], [0, 0, 0, 0], ["2", "1", "1", "7"])
    ws = event_windows(rec, {"1": "a", "2": "b"}, ["a", "b"], tmin=0.0, tmax=1.0)
    assert list(ws.label) == [1, 0]       # the event at 9.5 s runs past the end
    assert ws.data[0, 0, 0] == 200 and ws.data[1, 0, 0] == 600
    assert ws.n_rejected == 1


def test_patches_are_views():
    x = np.zeros((3, 1000), dtype=np.float32)
    p = to_patches(x, 200)
    assert p.shape == (3, 5, 200) and np.shares_memory(p, x)
    with pytest.raises(ValueError, match="multiple"):
        to_patches(np.zeros((3, 950)), 200)

"""Standardisation properties, shown on signals whose right answer is known."""
import tracemalloc

import numpy as np
import pytest

from brainfm import from_array
from brainfm.data.standardise import StandardiseConfig, standardise
from brainfm.errors import RecordingError

NAMES = ["Fp1", "Fp2", "C3", "C4", "O1", "O2"]


def _sines(freqs_amps, sfreq=250.0, seconds=20.0, n_ch=len(NAMES), uv=True):
    t = np.arange(int(sfreq * seconds)) / sfreq
    sig = sum(a * np.sin(2 * np.pi * f * t) for f, a in freqs_amps)
    data = np.tile(sig, (n_ch, 1))
    return from_array(data, sfreq, NAMES[:n_ch], units="uV" if uv else "V")


def _amplitude(x, sfreq, freq):
    """Amplitude of one frequency in the middle of the signal (edges excluded)."""
    mid = x[int(2 * sfreq):-int(2 * sfreq)]
    spec = np.abs(np.fft.rfft(mid)) * 2 / len(mid)
    freqs = np.fft.rfftfreq(len(mid), 1 / sfreq)
    return spec[np.argmin(np.abs(freqs - freq))]


def test_units_and_scale():
    rec = standardise(_sines([(10, 100.0)]), {"bad_channel_z": None})
    assert rec.data.dtype == np.float32
    assert rec.units[0] == "100 uV"
    # a 100 uV sine becomes amplitude 1.0 in units of 100 uV
    assert _amplitude(rec.data[0], rec.sfreq, 10) == pytest.approx(1.0, rel=0.02)


def test_bandpass_notch_and_resample():
    rec = standardise(_sines([(0.05, 50.0), (10, 50.0), (50, 50.0), (90, 50.0)]))
    assert rec.sfreq == 200.0
    x = rec.data[0]
    assert _amplitude(x, 200, 10) == pytest.approx(0.5, rel=0.05)   # passband kept
    assert _amplitude(x, 200, 50) < 0.01                            # mains notched
    assert _amplitude(x, 200, 0.05) < 0.05                          # drift removed
    steps = [s["step"] for s in rec.provenance["steps"]]
    assert steps.index("resample") < steps.index("filter")          # cheap order when down


@pytest.mark.real_data
def test_resample_first_matches_filter_first(data_root):
    """On real EEG, downsampling before filtering gives what filtering first gives."""
    from scipy.signal import resample_poly

    from brainfm import read_recording

    rec = read_recording(data_root / "eegmat" / "Subject05_2.edf")
    fast = standardise(rec, {"bad_channel_z": None})
    slow = standardise(rec, {"bad_channel_z": None, "sfreq": None})  # filter at 250 Hz
    slow_200 = resample_poly(slow.data.astype(np.float64), 4, 5, axis=1)
    core = slice(400, -400)
    err = fast.data[:, core] - slow_200[:, core]
    assert np.sqrt((err ** 2).mean()) < 0.01 * np.sqrt((slow_200[:, core] ** 2).mean())


def test_no_float64_copy_of_whole_recording():
    """Peak memory stays below input + output + one float64 copy of the recording."""
    rng = np.random.default_rng(1)
    data = (rng.standard_normal((19, 250 * 1200)) * 1e-5).astype(np.float32)
    rec = from_array(data, 250.0, [f"E{i}" for i in range(19)], montage=None)
    tracemalloc.start()
    standardise(rec, {"bad_channel_z": None})
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < data.size * 4 * 3


def test_average_reference_zeroes_channel_mean():
    rng = np.random.default_rng(2)
    rec = from_array(rng.standard_normal((6, 5000)) * 10, 200.0, NAMES, units="uV")
    out = standardise(rec, {"reference": "average", "bad_channel_z": None})
    assert np.abs(out.data.mean(axis=0)).max() < 1e-5


def test_flat_channel_dropped_and_noisy_marked():
    rng = np.random.default_rng(3)
    data = rng.standard_normal((6, 200 * 30)) * 10
    data[1] = 0.0
    data[4] *= 1000
    out = standardise(from_array(data, 200.0, NAMES, units="uV"))
    assert "Fp2" not in out.ch_names
    assert out.bads == ["O1"]
    dropped = standardise(from_array(data, 200.0, NAMES, units="uV"), {"bad_channels": "drop"})
    assert "O1" not in dropped.ch_names


def test_unknown_option_is_named():
    with pytest.raises(ValueError, match="hfreq"):
        StandardiseConfig.from_dict({"hfreq": 40})


def test_rate_too_low_names_rate():
    with pytest.raises(RecordingError, match="128 Hz"):
        standardise(_sines([(10, 10.0)], sfreq=128.0))


def test_filtfilt_with_cached_state_equals_scipy():
    from scipy import signal

    from brainfm.data.standardise import _filter_design, sos_filtfilt

    sos, zi, _ = _filter_design(0.3, 75.0, 4, 60.0, 30.0, 200.0)
    x = np.random.default_rng(4).standard_normal((3, 4000)).cumsum(axis=1)
    expected = signal.sosfiltfilt(sos, x, axis=1, padlen=270)
    assert np.allclose(sos_filtfilt(sos, zi, x, 270), expected, rtol=0, atol=1e-9)

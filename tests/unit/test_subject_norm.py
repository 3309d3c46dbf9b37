"""Per-subject normalisation: each subject z-scored from its own rows, nothing else.

Synthetic features make the properties exact (a subject's statistics are its own, labels
never enter); tests/integration/test_subject_norm.py checks the pipelines on real EEG.
"""
import numpy as np
import pandas as pd
import pytest

from brainfm.bench.baselines import bandpower_lr, declared_band
from brainfm.bench.subject_norm import standardise_per_subject, subject_ids
from brainfm.validate import bench_problems


def _features(seed=0):
    """Three subjects with their own offset and scale per column, rows interleaved."""
    rng = np.random.default_rng(seed)
    subjects = np.array(["a", "b", "c"] * 8)
    offset = {"a": [0.0, 10.0, -3.0], "b": [5.0, -2.0, 1.0], "c": [-7.0, 0.5, 40.0]}
    scale = {"a": [1.0, 0.1, 3.0], "b": [20.0, 2.0, 0.5], "c": [0.3, 5.0, 1.0]}
    x = np.stack([np.asarray(offset[s]) + np.asarray(scale[s]) * rng.standard_normal(3)
                  for s in subjects])
    return x, subjects


def test_each_subject_is_z_scored_on_its_own_rows():
    x, subjects = _features()
    z = standardise_per_subject(x, subjects)
    assert z.shape == x.shape and z.dtype == np.float64
    for s in "abc":
        np.testing.assert_allclose(z[subjects == s].mean(axis=0), 0.0, atol=1e-12)
        np.testing.assert_allclose(z[subjects == s].std(axis=0), 1.0, rtol=1e-12)
        own = x[subjects == s]
        np.testing.assert_allclose(z[subjects == s], (own - own.mean(0)) / own.std(0))


def test_a_subject_s_output_depends_on_its_rows_only_and_follows_row_order():
    x, subjects = _features()
    z = standardise_per_subject(x, subjects)
    other = x.copy()
    other[subjects != "b"] = 1e3 * np.random.default_rng(1).standard_normal(
        other[subjects != "b"].shape)                       # every other subject changed
    np.testing.assert_array_equal(standardise_per_subject(other, subjects)[subjects == "b"],
                                  z[subjects == "b"])
    alone = standardise_per_subject(x[subjects == "b"], subjects[subjects == "b"])
    np.testing.assert_array_equal(alone, z[subjects == "b"])  # as if normalised by itself
    order = np.random.default_rng(2).permutation(len(x))
    np.testing.assert_allclose(standardise_per_subject(x[order], subjects[order]), z[order],
                               atol=1e-12)


def test_removes_a_per_subject_shift_that_a_shared_threshold_cannot():
    """The motivating case: classes separate within every subject, but each subject's
    features are shifted, so raw features overlap across subjects and normalised ones do not."""
    rng = np.random.default_rng(3)
    subjects = np.repeat(np.arange(6), 20)
    y = np.tile(np.repeat([0, 1], 10), 6)
    x = (y + 0.1 * rng.standard_normal(len(y)) + 5.0 * subjects)[:, None]
    z = standardise_per_subject(x, subjects)[:, 0]
    assert x[y == 0].max() > x[y == 1].min()               # no raw threshold separates
    assert z[y == 0].max() < 0 < z[y == 1].min()           # zero separates every subject


def test_constant_columns_and_single_row_subjects_become_zero():
    x = np.array([[1.0, 3.7], [2.0, 3.7], [4.0, 3.7], [9.0, -2.0]])
    subjects = np.array(["a", "a", "a", "lonely"])
    z = standardise_per_subject(x, subjects)
    assert np.isfinite(z).all()
    np.testing.assert_array_equal(z[:3, 1], 0.0)            # constant within subject a
    np.testing.assert_array_equal(z[3], 0.0)                # one row: nothing to scale
    np.testing.assert_allclose(z[:3, 0], (x[:3, 0] - x[:3, 0].mean()) / x[:3, 0].std())


def test_bad_inputs_are_named():
    x, subjects = _features()
    with pytest.raises(ValueError, match=r"\(windows, features\)"):
        standardise_per_subject(x[:, 0], subjects)
    with pytest.raises(ValueError, match="one subject per feature row"):
        standardise_per_subject(x, subjects[:-1])
    x[4, 2] = -np.inf
    with pytest.raises(ValueError, match=r"column 2 of row 4 \(subject 'b'\) is -inf"):
        standardise_per_subject(x, subjects)


def test_subject_ids_refuse_windows_without_subjects():
    table = pd.DataFrame({"dataset": ["eegmat", "eegmat"], "subject": ["01", "02"],
                          "recording": ["a.edf", "b.edf"]})
    assert list(subject_ids(table)) == ["eegmat/01", "eegmat/02"]
    bonn = pd.DataFrame({"dataset": ["bonn"], "subject": [None], "recording": ["S001.txt"]})
    with pytest.raises(ValueError, match=r"subject_norm needs subject ids.*\['bonn'\]"):
        subject_ids(pd.concat([table, bonn]))


def test_the_bench_config_accepts_subject_norm_on_classical_and_probe_only():
    def problems(**spec):
        experiment = {"datasets": ["eegmat"], "pipelines": {"p": spec}}
        return [p for p in bench_problems(experiment) if "subject_norm" in p]

    assert not problems(kind="classical", baseline="bandpower_lr", subject_norm=True)
    assert not problems(kind="probe", backbone={}, subject_norm=True)
    assert not problems(kind="eegnet", subject_norm=False)
    assert problems(kind="eegnet", subject_norm=True) == [
        "pipelines.p.subject_norm=True; use true or false, on a pipeline of kind classical "
        "or probe"]
    assert problems(kind="classical", baseline="csp_lda", subject_norm="yes")


def test_band_power_on_named_bands_declares_them():
    assert declared_band(bandpower_lr(bands={"alpha": [8, 13]})) == "8-13 Hz"
    assert declared_band(bandpower_lr(bands={"alpha": [8, 13], "beta": [13, 30]})) == \
        "2 bands 8-30 Hz"

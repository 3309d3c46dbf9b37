"""Classical baselines on synthetic windows: the CCA SSVEP classifier, the estimator API."""
import numpy as np
import pandas as pd
import pytest

from brainfm.bench.baselines import (CLASSICAL, BandPass, BandPower, CCACorrelations, LogPSD,
                                     SSVEPCCA, arrays_from_store, declared_band,
                                     default_baselines, evaluate_baseline, make_baseline,
                                     stimulation_freqs)
from brainfm.bench.protocols import LeaveOneSubjectOut
from brainfm.configuration import declared_dataset
from brainfm.data.datasets import DatasetSpec
from brainfm.errors import ConfigError

SFREQ = 200.0
CLASSES = ["rest", "13Hz", "17Hz", "21Hz"]
FREQS = [None, 13.0, 17.0, 21.0]


def ssvep_windows(n_per_class=12, n_channels=8, n_times=400, snr=0.5, seed=0):
    """Noise windows; class k > 0 adds a sinusoid at FREQS[k] (random phase, per-channel
    gain) and its first harmonic; class 0 ("rest") is noise only."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_times) / SFREQ
    X, y = [], []
    for label, f in enumerate(FREQS):
        for _ in range(n_per_class):
            x = rng.standard_normal((n_channels, n_times))
            if f is not None:
                phase, gain = rng.uniform(0, 2 * np.pi), rng.uniform(0.5, 1.5, (n_channels, 1))
                x += snr * gain * (np.sin(2 * np.pi * f * t + phase)
                                   + 0.5 * np.sin(4 * np.pi * f * t + 2 * phase))
            X.append(x)
            y.append(label)
    return np.asarray(X, dtype=np.float32), np.asarray(y)


def test_stimulation_freqs_parse_class_names():
    assert stimulation_freqs(CLASSES) == FREQS
    assert stimulation_freqs(["8.57Hz", "12 hz", "target"]) == [8.57, 12.0, None]


def test_cca_correlation_is_one_for_a_pure_reference_and_ignores_scale_and_offset():
    t = np.arange(400) / SFREQ
    x = np.stack([np.sin(2 * np.pi * 13 * t + 0.3), 3 * np.cos(2 * np.pi * 13 * t) + 5])
    corr = CCACorrelations([13.0, 17.0, 21.0], SFREQ, n_harmonics=2).transform(x[None])
    assert corr.shape == (1, 3)
    assert corr[0, 0] == pytest.approx(1.0, abs=1e-9)
    assert corr[0, 1:].max() < 0.2


def test_cca_rank_deficient_window_does_not_invent_correlation():
    """A duplicated channel adds no direction: correlations equal those of the unique one."""
    x = np.random.default_rng(1).standard_normal((1, 3, 400))
    dup = np.concatenate([x, x[:, :1]], axis=1)
    cca = CCACorrelations([13.0, 17.0], SFREQ)
    np.testing.assert_allclose(cca.transform(dup), cca.transform(x), atol=1e-9)


def test_training_free_cca_classifies_a_13hz_window_as_13hz():
    rng = np.random.default_rng(2)
    t = np.arange(1000) / SFREQ
    x = rng.standard_normal((8, 1000)) + 0.4 * np.sin(2 * np.pi * 13 * t)
    clf = SSVEPCCA(FREQS, SFREQ, readout="argmax").fit(x[None])  # fit learns nothing
    assert CLASSES[clf.predict(x[None])[0]] == "13Hz"
    scores = clf.decision_function(x[None])
    assert scores.shape == (1, 3) and scores.argmax() == 0
    assert not hasattr(clf, "predict_proba")  # correlations are not probabilities


def test_argmax_readout_refuses_rest_labels():
    X, y = ssvep_windows(n_per_class=2)
    with pytest.raises(ValueError, match="readout='logistic'"):
        SSVEPCCA(FREQS, SFREQ, readout="argmax").fit(X, y)


def test_logistic_readout_learns_rest_and_the_frequencies():
    X, y = ssvep_windows(seed=3)
    X_test, y_test = ssvep_windows(n_per_class=8, seed=4)
    clf = make_baseline("cca", classes=CLASSES, sfreq=SFREQ).fit(X, y)
    proba = clf.predict_proba(X_test)
    assert proba.shape == (len(X_test), 4) and np.allclose(proba.sum(1), 1.0)
    assert clf.decision_function(X_test).shape == (len(X_test), 4)
    pred = clf.predict(X_test)
    assert pred.shape == y_test.shape and list(clf.classes_) == [0, 1, 2, 3]
    assert (pred == y_test).mean() > 0.9


def test_logistic_readout_needs_labels():
    X, _ = ssvep_windows(n_per_class=2)
    with pytest.raises(ValueError, match="fit\\(X, y\\)"):
        SSVEPCCA(FREQS, SFREQ).fit(X)


def test_reference_harmonics_must_stay_below_nyquist():
    X, _ = ssvep_windows(n_per_class=1)
    with pytest.raises(ValueError, match="Nyquist"):
        CCACorrelations([60.0], SFREQ, n_harmonics=2).transform(X)


def test_bandpower_features_see_the_band_of_a_sinusoid():
    t = np.arange(1000) / SFREQ
    alpha = np.sin(2 * np.pi * 10 * t)[None, None]
    feats = BandPower(SFREQ).transform(alpha)
    assert feats.shape == (1, 5)
    assert feats[0].argmax() == 2  # delta, theta, alpha, beta, gamma


@pytest.mark.parametrize("name", ["csp_lda", "ts_lr", "xdawn_lr", "cca", "bandpower_lr",
                                  "fbcca", "psd_lr", "fb_ts_lr", "fbcsp_lda"])
def test_every_baseline_fits_predicts_and_scores(name):
    X, y = ssvep_windows(n_per_class=10, n_channels=4, seed=5)
    if name in ("csp_lda", "xdawn_lr", "ts_lr", "fbcsp_lda"):  # binary: stimulation or not
        y = (y > 0).astype(int)
    est = make_baseline(name, classes=CLASSES, sfreq=SFREQ).fit(X, y)
    n_classes = len(np.unique(y))
    assert est.predict(X).shape == (len(X),)
    assert set(est.predict(X)) <= set(np.unique(y))
    proba = est.predict_proba(X)
    assert proba.shape == (len(X), n_classes) and np.allclose(proba.sum(1), 1.0)


def test_registry_and_paradigm_defaults():
    assert set(CLASSICAL) >= {"csp_lda", "ts_lr", "xdawn_lr", "cca", "bandpower_lr", "fbcca",
                              "psd_lr", "fb_ts_lr", "fbcsp_lda"}
    assert default_baselines("ssvep") == ("fbcca", "psd_lr", "fb_ts_lr")
    assert default_baselines("task", n_channels=1) == ("bandpower_lr",)
    with pytest.raises(ValueError, match="unknown paradigm"):
        default_baselines("sleep")
    with pytest.raises(ValueError, match="unknown baseline"):
        make_baseline("eegnet")
    with pytest.raises(ValueError, match="freqs"):
        make_baseline("cca")


def test_each_dataset_config_declares_the_paradigm_of_its_baselines():
    """The paradigm is a fact of the dataset's config, not a list of names in code."""
    declared = {name: declared_dataset(name) for name in
                ("ssvep_exoskeleton", "muse_p300", "eegmat", "eegmat_sample",
                 "eegmmidb_baseline", "bonn", "delhi")}
    assert default_baselines(declared["ssvep_exoskeleton"]) == ("fbcca", "psd_lr", "fb_ts_lr")
    assert default_baselines(declared["muse_p300"]) == ("xdawn_lr", "ts_lr")
    assert (default_baselines(declared["eegmat"]) == default_baselines(declared["eegmat_sample"])
            == default_baselines(declared["eegmmidb_baseline"])
            == ("csp_lda", "fbcsp_lda", "fb_ts_lr"))
    assert (default_baselines(declared["bonn"]) == default_baselines(declared["delhi"])
            == ("bandpower_lr",))
    assert all(spec.licence for spec in declared.values())
    own = DatasetSpec.from_dict({"name": "my_study", "path": "/data/my_study"})
    with pytest.raises(ValueError, match="'my_study' declares no paradigm; add 'paradigm:"):
        default_baselines(own)
    with pytest.raises(ConfigError, match="paradigm='sleep'; use one of"):
        DatasetSpec.from_dict({"name": "my_study", "path": "/data/x", "paradigm": "sleep"})


def test_evaluate_baseline_fits_on_train_rows_only():
    """A fold's estimator never sees its test subject: fit records what it was given."""
    X, y = ssvep_windows(n_per_class=6, n_channels=2, seed=6)
    subjects = np.tile(np.repeat(["a", "b", "c"], 2), 4)
    table = pd.DataFrame({"dataset": "syn", "subject": subjects, "session": "1",
                          "recording": [f"{s}.fif" for s in subjects], "label": y,
                          "onset_s": 0.0})
    seen = []

    class Spy(SSVEPCCA):
        def fit(self, X, y=None):
            seen.append(X.copy())
            return super().fit(X, y)

    res = evaluate_baseline(lambda: Spy(FREQS, SFREQ), X, y, table,
                            LeaveOneSubjectOut(val_subjects=0))
    assert list(res["test_group"]) == ["syn/a", "syn/b", "syn/c"]
    assert (res["n_train"] + res["n_test"] == len(X)).all()
    for fold_X, subject in zip(seen, "abc"):
        test_rows = X[subjects == subject]
        assert not any((fold_X == row).all(axis=(1, 2)).any() for row in test_rows)
    res = evaluate_baseline(lambda: Spy(FREQS, SFREQ), X, y, table,
                            LeaveOneSubjectOut(val_subjects=0), groups=["syn/b"])
    assert list(res["test_group"]) == ["syn/b"]


class _FakeWindows:
    """The slice of WindowDataset that arrays_from_store reads, with load_batch's reorder."""

    def __init__(self, X, y):
        self.X, self.y = X, y

    def __len__(self):
        return len(self.X)

    def channel_keys(self):
        return np.array([x.shape[0] for x in self.X])

    def shape_keys(self):
        return np.array([x.shape[1] for x in self.X])

    def load_batch(self, indices):
        import torch

        idx = np.sort(np.asarray(indices))[::-1].copy()  # any order, as load_batch's
        x = torch.from_numpy(np.stack([self.X[i] for i in idx]).astype(np.float32))
        return {"x": x.view(len(idx), x.shape[1], -1, 100), "y": torch.from_numpy(self.y[idx]),
                "row": torch.from_numpy(idx)}


def test_arrays_from_store_keeps_the_order_of_rows():
    rng = np.random.default_rng(7)
    X = [rng.standard_normal((3, 400)).astype(np.float32) for _ in range(10)]
    y = np.arange(10)
    rows = np.array([4, 1, 9, 0, 7])
    Xa, ya = arrays_from_store(_FakeWindows(X, y), rows, chunk=2)
    assert Xa.shape == (5, 3, 400) and Xa.dtype == np.float32
    np.testing.assert_array_equal(ya, rows)
    np.testing.assert_array_equal(Xa, np.stack([X[r] for r in rows]))


def test_arrays_from_store_refuses_mixed_shapes():
    X = [np.zeros((3, 400), np.float32), np.zeros((1, 400), np.float32)]
    with pytest.raises(ValueError, match="one dataset"):
        arrays_from_store(_FakeWindows(X, np.arange(2)))


def test_band_pass_keeps_the_band_and_removes_what_lies_outside():
    t = np.arange(800) / SFREQ
    X = np.stack([np.sin(2 * np.pi * 10 * t), np.sin(2 * np.pi * 50 * t)])[None]
    out = BandPass((8.0, 30.0), SFREQ).transform(X)[0, :, 100:-100]     # edges aside
    assert np.std(out[0]) == pytest.approx(np.std(X[0, 0]), rel=0.05)    # 10 Hz passes
    assert np.std(out[1]) < 0.01 * np.std(X[0, 1])                       # 50 Hz is gone
    with pytest.raises(ValueError, match="below Nyquist"):
        BandPass((8.0, 120.0), SFREQ).transform(X)


def test_log_psd_peaks_at_the_stimulation_frequency_and_declares_its_band():
    X, y = ssvep_windows(n_per_class=1, n_channels=1, n_times=800, snr=3.0, seed=2)
    feats = LogPSD(SFREQ, band=(5.0, 45.0)).transform(X)
    freqs = np.arange(5.0, 45.01, 0.5)                                   # 2 s Welch bins
    assert feats.shape == (4, len(freqs))
    for k in (1, 2, 3):
        assert freqs[feats[k].argmax()] == FREQS[k]
    assert declared_band(make_baseline("psd_lr", sfreq=SFREQ)) == "5-45 Hz"
    assert declared_band(make_baseline("csp_lda", sfreq=SFREQ)) == "8-30 Hz"
    assert declared_band(make_baseline("csp_lda", band=None)) == "broadband"
    assert declared_band(make_baseline("fbcsp_lda", sfreq=SFREQ)) == "9 bands 4-40 Hz"


def test_filter_bank_cca_beats_chance_and_uses_the_ssvep_sub_bands():
    X, y = ssvep_windows(n_per_class=16, n_channels=4, n_times=400, snr=0.3, seed=9)
    est = make_baseline("fbcca", classes=CLASSES, sfreq=SFREQ)
    assert est.bands[0] == (8.0, 74.0) and len(est.bands) == 5 and est.n_harmonics == 3
    est.fit(X[::2], y[::2])
    assert (est.predict(X[1::2]) == y[1::2]).mean() > 0.6                # chance 0.25
    ts = make_baseline("fb_ts_lr", classes=CLASSES, sfreq=SFREQ)        # SSVEP sub-bands
    assert declared_band(ts) == "5 bands 11-45 Hz"

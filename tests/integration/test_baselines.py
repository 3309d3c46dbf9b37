"""Sanity anchors of the classical baselines on the real shared recordings.

Every score is honest: a fresh estimator per fold, fitted on that fold's training rows
only, scored on its held-out subject (recordings for the epilepsy segments). The protocols
hold out no validation set, since these baselines select nothing on one. The thresholds are
the issue's anchors, set well below the observed figures (in each test's docstring).
"""
import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

from brainfm.bench.baselines import arrays_from_store, evaluate_baseline, make_baseline
from brainfm.bench.protocols import (GroupKFoldBySubject, LeaveOneSubjectOut,
                                     StratifiedRecordingKFold)
from brainfm.data.loading import WindowDataset
from brainfm.data.store import CorpusStore

pytestmark = [pytest.mark.real_data, pytest.mark.slow]

LOSO = LeaveOneSubjectOut(val_subjects=0)


def load(root, name):
    store = CorpusStore(root / name)
    windows = WindowDataset([store])
    X, y = arrays_from_store(windows)
    return store, windows.table, X, y


def run(root, name, baseline, protocol, groups=None, **kwargs):
    """Per-fold metrics of ``baseline`` on ``name``, printed as mean +/- sd over folds."""
    store, table, X, y = load(root, name)
    res = evaluate_baseline(lambda: make_baseline(baseline, classes=store.classes,
                                                  sfreq=store.sfreq, **kwargs),
                            X, y, table, protocol, n_classes=len(store.classes),
                            groups=groups)
    cols = [c for c in ("balanced_accuracy", "auroc") if c in res]
    print(f"\n{name} {baseline} ({len(res)} folds, {res['fit_s'].sum():.1f} s fitting): "
          + ", ".join(f"{c} {res[c].mean():.3f} +/- {res[c].std():.3f}" for c in cols))
    return res


def test_ssvep_cca_far_above_chance(prepared_stores):
    """CCA with the learned read-out, LOSO over all 12 subjects; chance is 0.25.

    Observed: balanced accuracy 0.763 +/- 0.157 (lowest subject 0.42).
    """
    root, _ = prepared_stores
    res = run(root, "ssvep_exoskeleton", "cca", LOSO)
    assert len(res) == 12
    assert res["balanced_accuracy"].mean() > 0.5
    assert (res["balanced_accuracy"] > 0.25).all()


def test_ssvep_filter_bank_cca_reaches_the_anchor(prepared_stores):
    """Filter-bank CCA, the first 6 LOSO folds; the issue's anchor is 0.70 (chance 0.25).

    Observed on all 12 subjects: 0.846 +/- 0.142 (CCA 0.763; benchmarks/classical_baselines.py);
    on these 6: 0.79.
    """
    root, _ = prepared_stores
    res = run(root, "ssvep_exoskeleton", "fbcca", LOSO,
              groups=[f"ssvep_exoskeleton/{s:02d}" for s in range(1, 7)])
    assert len(res) == 6
    assert res["balanced_accuracy"].mean() >= 0.70


@pytest.mark.parametrize("name", ["psd_lr", "fb_ts_lr"])
def test_ssvep_spectral_and_filter_bank_covariance_baselines(prepared_stores, name):
    """Log-PSD 5-45 Hz + LR and filter-bank covariances, subjects 03 and 04 held out.

    Observed (12 subjects): psd_lr 0.578 +/- 0.152, fb_ts_lr 0.574 +/- 0.136, where ts_lr on
    broadband covariances gets 0.287 +/- 0.057; on these two subjects 0.67-0.81.
    """
    root, _ = prepared_stores
    res = run(root, "ssvep_exoskeleton", name, LOSO,
              groups=["ssvep_exoskeleton/03", "ssvep_exoskeleton/04"])
    assert len(res) == 2 and (res["balanced_accuracy"] > 0.5).all()


def test_ssvep_training_free_cca_on_stimulation_windows(prepared_stores):
    """The classical rule (argmax correlation, nothing fitted) on the three frequencies.

    Chance is 1/3; observed per-subject balanced accuracy 0.819 +/- 0.181.
    """
    root, _ = prepared_stores
    store, table, X, y = load(root, "ssvep_exoskeleton")
    clf = make_baseline("cca", classes=store.classes, readout="argmax").fit(X[:1])
    stim, subjects = y > 0, table["subject"].to_numpy()
    scores = [balanced_accuracy_score(y[stim & (subjects == s)],
                                      clf.predict(X[stim & (subjects == s)]))
              for s in sorted(set(subjects))]
    print(f"\nssvep_exoskeleton cca argmax, stimulation classes: {np.mean(scores):.3f} "
          f"+/- {np.std(scores, ddof=1):.3f}")
    assert np.mean(scores) > 0.6


def test_eegmat_csp_lda_beats_chance_across_subjects(prepared_stores):
    """Rest vs arithmetic, CSP + LDA on 8-30 Hz, 6 subject-grouped folds over all 36
    subjects (a sixth of LOSO's fits); chance is 0.5.

    Observed: 0.642 +/- 0.047 over the 6 folds; LOSO over the 36 subjects gave 0.626 +/-
    0.161 (AUROC 0.792), and on the 0.3-75 Hz broadband 0.644 +/- 0.189.
    Cross-subject, with no per-subject re-centring, so subject shifts cost accuracy.
    """
    root, _ = prepared_stores
    res = run(root, "eegmat", "csp_lda", GroupKFoldBySubject(n_splits=6, val_fraction=0.0))
    assert len(res) == 6
    assert res["balanced_accuracy"].mean() > 0.55


def test_muse_p300_xdawn_auroc_above_chance(prepared_stores):
    """Target vs non-target, xDAWN + tangent space + LR, LOSO over the 5 subjects.

    A weak anchor: observed AUROC 0.516 +/- 0.052 (per subject 0.46 to 0.60). Cross-subject
    P300 on the four Muse electrodes is barely above chance; only subject 1 shows a clear
    ERP on its own.
    """
    root, _ = prepared_stores
    res = run(root, "muse_p300", "xdawn_lr", LOSO)
    assert len(res) == 5
    assert res["auroc"].mean() > 0.5


@pytest.mark.parametrize("name, floor", [("bonn", 0.8), ("delhi", 0.6)])
def test_epilepsy_bandpower_well_above_chance(prepared_stores, name, floor):
    """Three classes (chance 1/3), one channel: log band power + LR, 5 recording folds.

    Observed: bonn 0.948 +/- 0.017, delhi 0.860 +/- 0.055.
    """
    root, _ = prepared_stores
    res = run(root, name, "bandpower_lr", StratifiedRecordingKFold(5, val_fraction=0))
    assert len(res) == 5
    assert res["balanced_accuracy"].mean() > floor

"""Per-subject normalisation of features: removes each subject's own offset and scale.

Cross-subject EEG decoders often rank one subject's windows well (high AUROC) and still
misclassify many of them (low balanced accuracy): the subject's features sit shifted or
scaled against the training subjects', so the decision threshold learned on them lies in
the wrong place. Z-scoring every feature within each subject, on that subject's rows only,
puts all subjects on one scale before the classifier.

Why this is not leakage under leave-one-subject-out: the statistics of a subject come from
that subject's feature rows and nothing else, and never from labels. For the test subject
this uses its unlabelled test windows, all of them at once: the evaluation is transductive
(the decoder sees the whole test session's unlabelled data before predicting any window of
it), which is a declared assumption of the result, reported beside the same pipeline
without it. Training subjects are normalised with their own training rows; no statistic
crosses from one subject, or one side of a split, to another.
"""
from __future__ import annotations

import numpy as np

#: a column whose within-subject std is below this fraction of its mean's magnitude is
#: constant up to float rounding
_RELATIVE_TOLERANCE = 1e-10


def standardise_per_subject(features: np.ndarray, subjects: np.ndarray) -> np.ndarray:
    """Z-score each feature column within each subject, using only that subject's rows.

    Parameters
    ----------
    features : (n, d) array
        One row per window, after feature extraction. Labels never enter.
    subjects : (n,) array
        Per row, its subject (any hashable values that compare equal within a subject).

    Returns
    -------
    (n, d) float64 array, rows in the input order: per subject and column,
    ``(x - mean) / std`` with the subject's mean and (population) std.

    A column that is constant within a subject (std 0 up to rounding, which is always the
    case for a subject with a single row) becomes 0 for that subject: centred, not scaled,
    since it carries no within-subject variation to scale. Normalise train and test rows
    with separate calls when a subject can appear on both sides of a split (within-subject
    protocols), so that its training statistics never see its test rows.
    """
    x = np.asarray(features, dtype=np.float64)
    subjects = np.asarray(subjects)
    if x.ndim != 2:
        raise ValueError(f"features must be (windows, features), got shape {x.shape}")
    if subjects.shape != (len(x),):
        raise ValueError(f"subjects must give one subject per feature row: {len(x)} rows, "
                         f"subjects of shape {subjects.shape}")
    bad = ~np.isfinite(x)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ValueError(f"feature column {col} of row {row} (subject {str(subjects[row])!r}) is "
                         f"{x[row, col]}; {int(bad.sum())} non-finite values in all -> fix "
                         "the feature extraction (log of zero power?) before normalising")
    out = np.empty_like(x)
    for subject in np.unique(subjects):
        rows = subjects == subject
        mean = x[rows].mean(axis=0)
        std = x[rows].std(axis=0)
        constant = std <= _RELATIVE_TOLERANCE * np.abs(mean)
        out[rows] = np.where(constant, 0.0, (x[rows] - mean) / np.where(constant, 1.0, std))
    return out


def subject_ids(table) -> np.ndarray:
    """Per window of a window table, its ``dataset/subject`` group, the unit normalised.

    Refuses a table with windows that have no subject id (the epilepsy segments): there the
    only groups are recordings, each of one class, and z-scoring within them would erase
    the very differences between classes that the classifier needs.
    """
    from ..data.groups import NO_SUBJECT, subject_groups

    missing = table["subject"].fillna(NO_SUBJECT).astype(str) == NO_SUBJECT
    if missing.any():
        datasets = sorted(set(table.loc[missing, "dataset"].astype(str)))
        raise ValueError(f"subject_norm needs subject ids; {int(missing.sum())} windows of "
                         f"{datasets} have none (their recordings hold one class each, so "
                         "normalising within them would remove the class differences) -> "
                         "drop subject_norm for these datasets")
    return subject_groups(table)

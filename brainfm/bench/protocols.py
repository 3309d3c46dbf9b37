"""Evaluation protocols: which windows train, validate and test in each fold.

A protocol is an sklearn-style splitter over a window table (one row per window, the columns
of :attr:`brainfm.data.loading.WindowDataset.table`: ``dataset``, ``subject``, ``session``,
``recording``, ``label``, ``onset_s``). It yields :class:`Split` objects holding row
*positions* (``0 .. len(table) - 1``, what ``WindowDataset.subset`` takes).

Every split is checked as it is made: no group may sit on both sides of the train/val/test
boundary, and a protocol that promises "each subject (recording, session) tested once" checks
that over all its folds. A leak raises :class:`LeakageError` naming the offending groups,
so that an optimistic number can never come from a silently wrong split.

Groups are scoped by dataset, as in the DataModule: subject ``"01"`` of one dataset is not
``"01"`` of another, and where a dataset has no subject ids (``subject == "n/a"``) each
recording stands for its own subject.

Per-fold preprocessing fitted on data (normalisation, alignment) must be fitted on the
training rows only: see :func:`fit_on_train` and :class:`FoldScaler`.
"""
from __future__ import annotations

import inspect
import re
import zlib
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pandas as pd

from ..data.groups import NO_SUBJECT, recording_groups, subject_groups
COLUMNS = ("dataset", "subject", "session", "recording", "label", "onset_s")
LEVELS = ("subject", "recording", "session", "trial")


class LeakageError(ValueError):
    """A split puts one group (subject, recording, session or trial) in two parts."""


@dataclass(frozen=True)
class Split:
    """One fold: row positions of train, validation and test.

    ``disjoint_by`` is the level at which test is separated from train and validation
    (``"subject"``, ``"recording"``, ``"session"`` or ``"trial"``); ``val_disjoint_by`` the
    level separating train from validation (the same unless said otherwise). The arrays are
    read-only int64; rows are never in two parts (checked here, without the table; the group
    levels are checked against the table by :func:`check_split`).
    """

    name: str
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    test_group: str
    disjoint_by: str = "subject"
    val_disjoint_by: str | None = None

    def __post_init__(self):
        for part in ("train", "val", "test"):
            arr = np.asarray(getattr(self, part))
            if arr.size and arr.dtype.kind not in "iu":
                raise ValueError(f"split {self.name!r}: {part} must hold integer row "
                                 f"positions, got dtype {arr.dtype}")
            arr = arr.astype(np.int64).reshape(-1)
            if len(np.unique(arr)) != len(arr):
                raise ValueError(f"split {self.name!r}: {part} repeats rows")
            arr.flags.writeable = False
            object.__setattr__(self, part, arr)
        if self.val_disjoint_by is None:
            object.__setattr__(self, "val_disjoint_by", self.disjoint_by)
        for level in (self.disjoint_by, self.val_disjoint_by):
            if level not in LEVELS:
                raise ValueError(f"split {self.name!r}: unknown level {level!r}; "
                                 f"one of {LEVELS}")
        if not len(self.train) or not len(self.test):
            raise ValueError(f"split {self.name!r}: train ({len(self.train)} rows) and test "
                             f"({len(self.test)} rows) must both be non-empty")
        for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
            shared = np.intersect1d(getattr(self, a), getattr(self, b))
            if len(shared):
                raise LeakageError(f"split {self.name!r}: rows {shared[:10].tolist()} are in "
                                   f"both {a} and {b}")

    def parts(self) -> dict[str, np.ndarray]:
        return {"train": self.train, "val": self.val, "test": self.test}


# ---------------------------------------------------------------------------------------------
# groups and checks


def prepare_table(table: pd.DataFrame) -> pd.DataFrame:
    """The columns protocols read, as strings (``"n/a"`` for missing), positions as index."""
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"window table lacks columns {missing}; protocols need {COLUMNS} "
                         "(WindowDataset.table has them)")
    out = table.loc[:, list(COLUMNS)].reset_index(drop=True)
    for col in ("dataset", "subject", "session", "recording"):
        out[col] = out[col].fillna(NO_SUBJECT).astype(str)
    out["label"] = out["label"].astype(np.int64)
    out["onset_s"] = out["onset_s"].astype(float)
    return out


def group_keys(table: pd.DataFrame, level: str) -> np.ndarray:
    """Per row, the dataset-scoped group it belongs to at ``level``.

    ``subject``: ``dataset/subject``, or ``dataset/rec/recording`` where there is no subject
    (the DataModule's convention); ``recording``: ``dataset/rec/recording``; ``session``:
    the subject key plus ``/ses/session``; ``trial``: the row position.
    """
    t = prepare_table(table)
    if level == "recording":
        return recording_groups(t)
    if level == "trial":
        return np.arange(len(t)).astype(str)
    subj = subject_groups(t).astype(object)
    if level == "subject":
        return subj.astype(str)
    if level == "session":
        return (subj + "/ses/" + t["session"].to_numpy(dtype=object)).astype(str)
    raise ValueError(f"unknown level {level!r}; one of {LEVELS}")


def _overlap_error(name: str, a: str, b: str, level: str, shared) -> LeakageError:
    shown = sorted(str(g) for g in shared)
    more = f" (and {len(shown) - 10} more)" if len(shown) > 10 else ""
    return LeakageError(f"split {name!r}: {level}s {shown[:10]}{more} are in both {a} and "
                        f"{b}; a {level} must stay on one side")


def check_split(table: pd.DataFrame, split: Split) -> None:
    """Raise :class:`LeakageError` if any group crosses the split's boundaries.

    Test is checked against train and validation at ``split.disjoint_by``, train against
    validation at ``split.val_disjoint_by``.
    """
    n = len(table)
    for part, rows in split.parts().items():
        if len(rows) and (rows.min() < 0 or rows.max() >= n):
            raise ValueError(f"split {split.name!r}: {part} has row positions outside "
                             f"0..{n - 1}")
    keys = {level: group_keys(table, level) for level in
            {split.disjoint_by, split.val_disjoint_by}}
    pairs = (("train", "test", split.disjoint_by), ("val", "test", split.disjoint_by),
             ("train", "val", split.val_disjoint_by))
    parts = split.parts()
    for a, b, level in pairs:
        shared = set(keys[level][parts[a]]) & set(keys[level][parts[b]])
        if shared:
            raise _overlap_error(split.name, a, b, level, shared)


def coverage_counts(table: pd.DataFrame, splits, level: str, rows=None) -> pd.Series:
    """How many splits test each group of ``level`` (groups of ``rows``; all by default)."""
    keys = group_keys(table, level)
    universe = keys if rows is None else keys[np.asarray(rows, dtype=np.int64)]
    counts = pd.Series(0, index=pd.Index(sorted(set(universe)), name=level), dtype=np.int64)
    for s in splits:
        tested = pd.unique(keys[s.test])
        counts = counts.add(pd.Series(1, index=tested), fill_value=0).astype(np.int64)
    return counts


def check_coverage(table: pd.DataFrame, splits, level: str, rows=None,
                   expected: int = 1) -> None:
    """Raise if some group of ``level`` is not tested exactly ``expected`` times."""
    counts = coverage_counts(table, splits, level, rows)
    wrong = counts[counts != expected]
    if len(wrong):
        shown = {str(g): int(n) for g, n in list(wrong.items())[:10]}
        raise LeakageError(f"{len(wrong)} {level}s are not tested exactly {expected} "
                           f"time(s): {shown} (group: times tested)")


# ---------------------------------------------------------------------------------------------
# helpers shared by the protocols


def _natural_key(text: str):
    """Sort ``"2"`` before ``"10"``: digit runs compare as numbers."""
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", text)]


def _natural_rank(values: np.ndarray) -> np.ndarray:
    order = sorted(set(values.tolist()), key=_natural_key)
    rank = {v: i for i, v in enumerate(order)}
    return np.array([rank[v] for v in values.tolist()], dtype=np.int64)


def _fold_rng(seed: int, key: str) -> np.random.Generator:
    """A generator fixed by the seed and the fold's own key, not by the fold order."""
    return np.random.default_rng([int(seed), zlib.crc32(key.encode())])


def _n_val(spec, n_available: int, what: str, minimum: int = 0) -> int:
    """Validation groups to draw: an int count or a fraction in [0, 1); leaves >= 1 to train.

    With validation asked for, at least ``minimum`` groups where the data allow it (at most
    half of the available ones, so that training keeps the larger part).
    """
    if isinstance(spec, (bool, np.bool_)):
        raise ValueError(f"validation size must be an int or a fraction, got {spec!r}")
    if isinstance(spec, (int, np.integer)):
        n = int(spec)
        if n < 0:
            raise ValueError(f"validation size must be >= 0, got {spec}")
    else:
        frac = float(spec)
        if not 0.0 <= frac < 1.0:
            raise ValueError(f"validation fraction must be in [0, 1), got {spec}")
        n = max(int(round(frac * n_available)), 1) if frac > 0 else 0
    if n:
        n = max(n, min(int(minimum), n_available // 2))
    if n and n >= n_available:
        raise ValueError(f"cannot hold out {n} validation {what}(s) from {n_available} "
                         f"training {what}(s): none would be left to train on")
    return n


def _draw(units, n: int, rng: np.random.Generator) -> list:
    units = sorted(units)
    return sorted(rng.permutation(np.array(units, dtype=object))[:n].tolist()) if n else []


def _draw_stratified(units, strata: dict, frac: float, rng: np.random.Generator,
                     what: str) -> list:
    """About ``frac`` of ``units`` from every stratum (at least one in all if ``frac > 0``)."""
    units = sorted(units)
    total = _n_val(frac, len(units), what)
    if not total:
        return []
    picked = []
    for stratum in sorted({strata[u] for u in units}, key=str):
        members = [u for u in units if strata[u] == stratum]
        picked += _draw(members, int(round(frac * len(members))), rng)
    if not picked:  # every stratum too small to round up: take one unit anywhere
        picked = _draw(units, 1, rng)
    if len(picked) >= len(units):
        raise ValueError(f"validation would take every training {what}")
    return sorted(picked)


def _short(key: str, single_dataset: bool) -> str:
    """``eegmat/07`` -> ``07`` when the table holds one dataset (names stay readable)."""
    return key.split("/", 1)[1] if single_dataset and "/" in key else key


def _require_subjects(t: pd.DataFrame, protocol: str) -> None:
    anon = sorted(t.loc[t["subject"] == NO_SUBJECT, "dataset"].unique())
    if anon:
        raise ValueError(f"{protocol} needs subject ids, but datasets {anon} have none "
                         "(subject 'n/a'); use StratifiedRecordingKFold for them")


def _require_labels(t: pd.DataFrame, protocol: str) -> None:
    n = int((t["label"] < 0).sum())
    if n:
        raise ValueError(f"{protocol} needs labels, but {n} windows are unlabelled "
                         "(label -1); drop them first (labelled_only=True)")


# ---------------------------------------------------------------------------------------------
# protocols


class _Protocol:
    """Base: ``split`` makes every fold, checks each and the coverage, then yields them."""

    coverage_level: str | None = None  # every group of this level is tested exactly once

    def _splits(self, t: pd.DataFrame) -> Iterator[Split]:
        raise NotImplementedError

    def _coverage_rows(self, t: pd.DataFrame):
        return None

    def split(self, table: pd.DataFrame) -> Iterator[Split]:
        t = prepare_table(table)
        splits = list(self._splits(t))
        if not splits:
            raise ValueError(f"{type(self).__name__} made no split from this table")
        for s in splits:
            check_split(t, s)
        if self.coverage_level:
            check_coverage(t, splits, self.coverage_level, self._coverage_rows(t))
        return iter(splits)

    def get_n_splits(self, table: pd.DataFrame) -> int:
        return sum(1 for _ in self.split(table))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class LeaveOneSubjectOut(_Protocol):
    """Each subject tested once; validation subjects drawn from that fold's training subjects.

    Parameters
    ----------
    val_subjects : int or float
        Number of validation subjects, or a fraction of the training subjects (rounded, at
        least one when > 0). ``0`` for no validation set.
    seed : int
        Fixes the validation draw; each fold's draw depends on the seed and its test subject
        only, so adding a fold never reshuffles the others.
    min_val_subjects : int
        At least this many validation subjects where the dataset allows it (at most half of
        the training subjects): a fraction of a small dataset would otherwise select the
        epoch on one subject's handful of windows.
    """

    coverage_level = "subject"

    def __init__(self, val_subjects=1, seed: int = 0, min_val_subjects: int = 0):
        self.val_subjects, self.seed = val_subjects, int(seed)
        self.min_val_subjects = int(min_val_subjects)

    def _splits(self, t):
        _require_subjects(t, "LeaveOneSubjectOut")
        keys = group_keys(t, "subject")
        subjects = sorted(set(keys), key=_natural_key)
        if len(subjects) < 2:
            raise ValueError(f"leave-one-subject-out needs >= 2 subjects, got {subjects}")
        single = t["dataset"].nunique() == 1
        for s in subjects:
            rest = [u for u in subjects if u != s]
            val = _draw(rest, _n_val(self.val_subjects, len(rest), "subject",
                                     self.min_val_subjects), _fold_rng(self.seed, s))
            is_val = np.isin(keys, val)
            is_test = keys == s
            yield Split(f"test-subject={_short(s, single)}", np.flatnonzero(~is_val & ~is_test),
                        np.flatnonzero(is_val), np.flatnonzero(is_test), s, "subject")

    def get_n_splits(self, table):
        t = prepare_table(table)
        _require_subjects(t, "LeaveOneSubjectOut")
        return len(set(group_keys(t, "subject")))


class _KFold(_Protocol):
    """Shared settings of the k-fold protocols."""

    def __init__(self, n_splits: int = 5, val_fraction: float = 0.2, seed: int = 0):
        self.n_splits, self.val_fraction, self.seed = int(n_splits), val_fraction, int(seed)
        if self.n_splits < 2:
            raise ValueError(f"n_splits must be >= 2, got {n_splits}")

    def get_n_splits(self, table=None):
        return self.n_splits


class GroupKFoldBySubject(_KFold):
    """k folds over subjects (recordings where a dataset has none); seeded assignment.

    Subjects are shuffled with ``seed`` and dealt into ``n_splits`` folds of near-equal
    subject counts; each fold's validation subjects are a ``val_fraction`` of its training
    subjects, at least ``min_val_subjects`` where the data allow it.
    """

    coverage_level = "subject"

    def __init__(self, n_splits: int = 5, val_fraction: float = 0.2, seed: int = 0,
                 min_val_subjects: int = 0):
        super().__init__(n_splits, val_fraction, seed)
        self.min_val_subjects = int(min_val_subjects)

    def _splits(self, t):
        keys = group_keys(t, "subject")
        subjects = sorted(set(keys), key=_natural_key)
        if len(subjects) < self.n_splits:
            raise ValueError(f"{self.n_splits} folds need >= {self.n_splits} subjects, got "
                             f"{len(subjects)}")
        shuffled = np.random.default_rng(self.seed).permutation(np.array(subjects, object))
        for i, fold in enumerate(np.array_split(shuffled, self.n_splits)):
            name = f"fold={i + 1}/{self.n_splits}"
            rest = sorted(set(subjects) - set(fold))
            val = _draw(rest, _n_val(self.val_fraction, len(rest), "subject",
                                     self.min_val_subjects), _fold_rng(self.seed, name))
            is_val, is_test = np.isin(keys, val), np.isin(keys, list(fold))
            yield Split(name, np.flatnonzero(~is_val & ~is_test), np.flatnonzero(is_val),
                        np.flatnonzero(is_test), name, "subject")


class StratifiedRecordingKFold(_KFold):
    """k folds over recordings, stratified by label, for data without subject ids.

    All windows of a recording stay in one part. A recording's label is the most frequent
    label of its windows; strata are (dataset, label), so mixed corpora keep each dataset's
    class balance in every fold. Validation recordings are a ``val_fraction`` of each fold's
    training recordings, drawn per stratum. Refuses tables with subject ids: recording folds
    would put one subject's recordings in both train and test.
    """

    coverage_level = "recording"

    def _splits(self, t):
        from sklearn.model_selection import StratifiedKFold

        named = sorted(t.loc[t["subject"] != NO_SUBJECT, "dataset"].unique())
        if named:
            raise ValueError(f"datasets {named} have subject ids: recording folds would put "
                             "one subject in train and test; use GroupKFoldBySubject or "
                             "LeaveOneSubjectOut")
        _require_labels(t, "StratifiedRecordingKFold")
        keys = group_keys(t, "recording")
        per_rec = pd.DataFrame({"rec": keys, "dataset": t["dataset"], "label": t["label"]})
        rec_label = per_rec.groupby("rec")["label"].agg(lambda s: s.value_counts().idxmax())
        rec_dataset = per_rec.groupby("rec")["dataset"].first()
        recs = np.array(sorted(rec_label.index, key=_natural_key), dtype=object)
        strata = {r: f"{rec_dataset[r]}/{rec_label[r]}" for r in recs}
        if len(recs) < self.n_splits:
            raise ValueError(f"{self.n_splits} folds need >= {self.n_splits} recordings, got "
                             f"{len(recs)}")
        folds = StratifiedKFold(self.n_splits, shuffle=True, random_state=self.seed)
        y = np.array([strata[r] for r in recs])
        for i, (train_idx, test_idx) in enumerate(folds.split(np.zeros(len(recs)), y)):
            name = f"fold={i + 1}/{self.n_splits}"
            val = _draw_stratified(recs[train_idx].tolist(), strata, self.val_fraction,
                                   _fold_rng(self.seed, name), "recording")
            is_val, is_test = np.isin(keys, val), np.isin(keys, recs[test_idx].tolist())
            yield Split(name, np.flatnonzero(~is_val & ~is_test), np.flatnonzero(is_val),
                        np.flatnonzero(is_test), name, "recording")


class WithinSubjectFewShot(_Protocol):
    """Per subject: the first ``k_per_class`` trials of each class train, the rest test.

    Trials are ordered by session, then recording, then ``onset_s`` (digit runs compare as
    numbers, so session "2" precedes "10"), so training always precedes testing in time, as
    in a calibration session. With ``k_val_per_class > 0`` the next trials of each class form
    the validation set; by default there is none (a few-shot fit has nothing to spare, and
    early stopping on test trials would leak).

    Train and test share the subject by design: the guarantee is that they share no trial
    (row). Windows that overlap in time (a stride shorter than the window) are separate
    trials here; prepare event-locked windows without overlap for this protocol. Every class
    of a subject needs more than ``k_per_class + k_val_per_class`` trials.
    """

    coverage_level = "subject"

    def __init__(self, k_per_class: int = 5, k_val_per_class: int = 0):
        self.k_per_class, self.k_val_per_class = int(k_per_class), int(k_val_per_class)
        if self.k_per_class < 1 or self.k_val_per_class < 0:
            raise ValueError(f"need k_per_class >= 1 and k_val_per_class >= 0, got "
                             f"{k_per_class}, {k_val_per_class}")

    def _splits(self, t):
        _require_subjects(t, "WithinSubjectFewShot")
        _require_labels(t, "WithinSubjectFewShot")
        keys = group_keys(t, "subject")
        order = np.lexsort((t["onset_s"].to_numpy(), _natural_rank(t["recording"].to_numpy()),
                            _natural_rank(t["session"].to_numpy())))
        labels = t["label"].to_numpy()
        single = t["dataset"].nunique() == 1
        k, kv = self.k_per_class, self.k_val_per_class
        parts, short = {}, []
        for s in sorted(set(keys), key=_natural_key):
            train, val, test = [], [], []
            for c in np.unique(labels[keys == s]):
                rows = order[(keys[order] == s) & (labels[order] == c)]
                if len(rows) <= k + kv:
                    short.append(f"{s} class {c}: {len(rows)} trials")
                train += rows[:k].tolist()
                val += rows[k:k + kv].tolist()
                test += rows[k + kv:].tolist()
            parts[s] = (np.sort(train), np.sort(val), np.sort(test))
        if short:
            raise ValueError(f"few-shot with {k} train + {kv} val trials per class needs more "
                             f"trials than that in every class: {short}")
        for s, (train, val, test) in parts.items():
            yield Split(f"subject={_short(s, single)} k={k}", train, val, test, s, "trial")

    def get_n_splits(self, table):
        t = prepare_table(table)
        _require_subjects(t, "WithinSubjectFewShot")
        return len(set(group_keys(t, "subject")))


class CrossSession(_Protocol):
    """Per subject with >= ``min_sessions`` sessions: each session held out once for test.

    Training uses the subject's other sessions; validation is a seeded ``val_fraction`` of
    those sessions' trials, drawn per label. Subjects with fewer sessions (including
    ``session == "n/a"``) are left out. Train and test share the subject by design: the
    guarantee is that the test session is in neither train nor validation (train and
    validation are disjoint in trials only, as they come from the same sessions).
    """

    coverage_level = "session"

    def __init__(self, val_fraction: float = 0.2, seed: int = 0, min_sessions: int = 2):
        self.val_fraction, self.seed = val_fraction, int(seed)
        self.min_sessions = int(min_sessions)
        if self.min_sessions < 2:
            raise ValueError(f"min_sessions must be >= 2, got {min_sessions}")

    def _eligible(self, t) -> np.ndarray:
        """Rows of subjects with enough sessions."""
        _require_subjects(t, "CrossSession")
        subj = group_keys(t, "subject")
        n_sessions = pd.Series(t["session"].to_numpy()).groupby(subj).nunique()
        good = n_sessions.index[n_sessions >= self.min_sessions]
        mask = np.isin(subj, good) & (t["session"].to_numpy() != NO_SUBJECT)
        if not mask.any():
            raise ValueError(f"CrossSession: no subject has >= {self.min_sessions} sessions "
                             f"(sessions per subject: {n_sessions.to_dict()})")
        return mask

    def _coverage_rows(self, t):
        return np.flatnonzero(self._eligible(t))

    def _splits(self, t):
        eligible = self._eligible(t)
        subj, sess = group_keys(t, "subject"), group_keys(t, "session")
        labels = t["label"].to_numpy()
        single = t["dataset"].nunique() == 1
        for s in sorted(set(subj[eligible]), key=_natural_key):
            mine = eligible & (subj == s)
            for held in sorted(set(sess[mine]), key=_natural_key):
                is_test = mine & (sess == held)
                rest = np.flatnonzero(mine & ~is_test)
                strata = dict(zip(rest.tolist(), labels[rest].tolist()))
                val = _draw_stratified(rest.tolist(), strata, self.val_fraction,
                                       _fold_rng(self.seed, held), "trial")
                train = np.setdiff1d(rest, np.asarray(val, dtype=np.int64))
                session = held.rsplit("/ses/", 1)[1]
                yield Split(f"subject={_short(s, single)} test-session={session}", train,
                            np.asarray(val, dtype=np.int64), np.flatnonzero(is_test), held,
                            "session", "trial")

    def get_n_splits(self, table):
        t = prepare_table(table)
        return len(set(group_keys(t, "session")[self._eligible(t)]))


class WithinSubjectKFold(_Protocol):
    """Per subject, k folds over its runs (``by="recording"``) or sessions (``by="session"``):
    MOABB's within-session style of evaluation for a dataset of one subject or a few.

    Each subject's groups are dealt, in natural order, into ``min(n_splits, groups)`` folds;
    each fold tests its groups, and trains (and validates) on the same subject's other groups
    only. Validation: ``val_groups`` of the training groups, drawn with the seed, when at
    least one more group is left to train; otherwise a label-stratified ``val_fraction`` of
    the training trials (then train and validation share runs, never the test ones).
    Subjects with fewer than two groups cannot be split this way and are left out; the
    error says which when none is left.
    """

    def __init__(self, n_splits: int = 5, by: str = "recording", val_groups: int = 1,
                 val_fraction: float = 0.2, seed: int = 0):
        if by not in ("recording", "session"):
            raise ValueError(f"by={by!r}: group folds by 'recording' (runs) or 'session'")
        if int(n_splits) < 2:
            raise ValueError(f"n_splits must be >= 2, got {n_splits}")
        self.n_splits, self.by, self.val_groups = int(n_splits), by, int(val_groups)
        self.val_fraction, self.seed = val_fraction, int(seed)
        self.coverage_level = by

    def _eligible(self, t) -> np.ndarray:
        subj, grp = group_keys(t, "subject"), group_keys(t, self.by)
        n_groups = pd.Series(grp).groupby(subj).nunique()
        good = n_groups.index[n_groups >= 2]
        if not len(good):
            raise ValueError(f"WithinSubjectKFold(by={self.by!r}): no subject has >= 2 "
                             f"{self.by}s to split ({self.by}s per subject: "
                             f"{n_groups.to_dict()}); use by='session' or 'recording', or "
                             "a cross-subject protocol")
        return np.isin(subj, good)

    def _coverage_rows(self, t):
        return np.flatnonzero(self._eligible(t))

    def _splits(self, t):
        _require_labels(t, "WithinSubjectKFold")
        eligible = self._eligible(t)
        subj, grp = group_keys(t, "subject"), group_keys(t, self.by)
        labels = t["label"].to_numpy()
        single = t["dataset"].nunique() == 1
        for s in sorted(set(subj[eligible]), key=_natural_key):
            mine = eligible & (subj == s)
            groups = sorted(set(grp[mine]), key=_natural_key)
            k = min(self.n_splits, len(groups))
            for i, held in enumerate(np.array_split(np.array(groups, object), k)):
                name = f"subject={_short(s, single)} fold={i + 1}/{k}"
                is_test = mine & np.isin(grp, list(held))
                rest_groups = sorted(set(grp[mine & ~is_test]), key=_natural_key)
                rng = _fold_rng(self.seed, name)
                if self.val_groups and len(rest_groups) > self.val_groups:
                    val = np.flatnonzero(np.isin(grp, _draw(rest_groups, self.val_groups, rng)))
                    val_level = self.by
                else:
                    rest = np.flatnonzero(mine & ~is_test)
                    strata = dict(zip(rest.tolist(), labels[rest].tolist()))
                    val = np.asarray(_draw_stratified(rest.tolist(), strata, self.val_fraction,
                                                      rng, "trial"), dtype=np.int64)
                    val_level = "trial"
                train = np.setdiff1d(np.flatnonzero(mine & ~is_test), val)
                yield Split(name, train, val, np.flatnonzero(is_test), f"{s}/fold{i + 1}",
                            self.by, val_level)


PROTOCOLS = {"loso": LeaveOneSubjectOut, "group_kfold": GroupKFoldBySubject,
             "stratified_kfold": StratifiedRecordingKFold, "few_shot": WithinSubjectFewShot,
             "cross_session": CrossSession, "within_subject_kfold": WithinSubjectKFold}


def make_protocol(name: str, **kwargs) -> _Protocol:
    """The protocol called ``name`` (a key of :data:`PROTOCOLS`), built with ``kwargs``."""
    try:
        cls = PROTOCOLS[name]
    except KeyError:
        raise ValueError(f"unknown protocol {name!r}; one of {sorted(PROTOCOLS)}") from None
    return cls(**kwargs)


def protocol_from_spec(spec: dict) -> _Protocol:
    """The protocol a config entry describes: ``{name: ..., <its options>}``.

    Hydra merges an experiment's ``protocols.default`` over the one it inherits, so a
    protocol can arrive with another protocol's options (``val_subjects`` of ``loso`` under
    ``within_subject_kfold``): such an option is refused with the ones the protocol takes,
    and ``null`` drops it (an option set to null is not given: its default applies).
    """
    options = {k: v for k, v in dict(spec).items() if k != "name" and v is not None}
    name = spec.get("name")
    if name not in PROTOCOLS:
        raise ValueError(f"unknown protocol {name!r}; use one of {sorted(PROTOCOLS)}")
    takes = [p for p in inspect.signature(PROTOCOLS[name]).parameters if p != "self"]
    foreign = [k for k in options if k not in takes]
    if foreign:
        raise ValueError(f"protocol {name} takes no option {', '.join(map(repr, foreign))} "
                         f"(inherited from another protocol's entry?); it takes "
                         f"{', '.join(takes)} -> remove it, or set it to null in your "
                         "experiment to drop an inherited one")
    return make_protocol(name, **options)


# ---------------------------------------------------------------------------------------------
# per-fold preprocessing: fitted on training rows only


class FoldScaler:
    """Per-channel mean and standard deviation, fitted on training windows, applied to all.

    ``X`` is (windows, channels, ...): statistics pool every axis but ``channel_axis``.
    Channels with (near) zero spread are left unscaled rather than blown up.
    """

    def __init__(self, channel_axis: int = 1, eps: float = 1e-8):
        self.channel_axis, self.eps = channel_axis, eps

    def fit(self, X) -> "FoldScaler":
        X = np.asarray(X, dtype=np.float64)
        axes = tuple(a for a in range(X.ndim) if a != self.channel_axis % X.ndim)
        self.mean_ = X.mean(axis=axes, keepdims=True)
        std = X.std(axis=axes, keepdims=True)
        self.std_ = np.where(std > self.eps, std, 1.0)
        return self

    def transform(self, X) -> np.ndarray:
        if not hasattr(self, "mean_"):
            raise RuntimeError("FoldScaler.transform before fit")
        return (np.asarray(X) - self.mean_) / self.std_

    def fit_transform(self, X) -> np.ndarray:
        return self.fit(X).transform(X)


def fit_on_train(transformer, X, split: Split):
    """Fit ``transformer`` on the split's training rows of ``X`` only, and return it.

    The one sanctioned way to fit per-fold normalisation or alignment: statistics that see
    validation or test windows leak their distribution into training.
    """
    return transformer.fit(np.asarray(X)[split.train])

"""Evaluation protocols: disjointness, coverage, determinism, and the rules of each protocol."""
import numpy as np
import pandas as pd
import pytest

from brainfm.bench.protocols import (PROTOCOLS, CrossSession, FoldScaler, GroupKFoldBySubject,
                                     LeakageError, LeaveOneSubjectOut, Split,
                                     StratifiedRecordingKFold, WithinSubjectFewShot,
                                     WithinSubjectKFold,
                                     check_split, coverage_counts, fit_on_train, group_keys,
                                     make_protocol)


def subject_table(n_subjects=6, sessions=(2,), windows=6, n_classes=2, dataset="syn"):
    """Window table: subjects with given session counts (cycled), 2 runs a session."""
    rows = []
    for i in range(n_subjects):
        n_ses = sessions[i % len(sessions)]
        for j in range(n_ses):
            for r in range(2):
                for w in range(windows):
                    rows.append({"dataset": dataset, "subject": f"{i:02d}",
                                 "session": f"{j + 1}", "recording": f"s{i}_ses{j}_run{r}.edf",
                                 "label": (w + r) % n_classes, "onset_s": 5.0 * w})
    return pd.DataFrame(rows)


def segment_table(n_per_class=(20, 20, 10), windows=3, dataset="bonn"):
    """Epilepsy-like table: no subjects, one label per recording."""
    rows = []
    for c, n in enumerate(n_per_class):
        for k in range(n):
            for w in range(windows):
                rows.append({"dataset": dataset, "subject": "n/a", "session": "n/a",
                             "recording": f"c{c}/seg{k:03d}.txt", "label": c,
                             "onset_s": 5.0 * w})
    return pd.DataFrame(rows)


def assert_disjoint(table, split, level):
    keys = group_keys(table, level)
    parts = {p: set(keys[r]) for p, r in split.parts().items()}
    assert not parts["train"] & parts["test"]
    assert not parts["val"] & parts["test"]
    assert not parts["train"] & parts["val"]


def same_splits(a, b):
    return all(x.name == y.name and all(np.array_equal(x.parts()[p], y.parts()[p])
                                        for p in ("train", "val", "test")) for x, y in zip(a, b))


# -- leave one subject out ---------------------------------------------------------------------

def test_loso_tests_each_subject_once_with_val_from_training_subjects():
    t = subject_table(n_subjects=6)
    splits = list(LeaveOneSubjectOut(val_subjects=1, seed=3).split(t))
    keys = group_keys(t, "subject")
    assert len(splits) == 6 == LeaveOneSubjectOut().get_n_splits(t)
    assert (coverage_counts(t, splits, "subject") == 1).all()
    for s in splits:
        assert_disjoint(t, s, "subject")
        assert set(keys[s.test]) == {s.test_group}
        assert np.array_equal(s.test, np.flatnonzero(keys == s.test_group))   # all its rows
        assert len(set(keys[s.val])) == 1 and s.test_group not in set(keys[s.val])
        assert len(s.train) + len(s.val) + len(s.test) == len(t)
        assert s.name == f"test-subject={s.test_group.split('/')[1]}"


def test_loso_val_fraction_and_no_val():
    t = subject_table(n_subjects=11)
    keys = group_keys(t, "subject")
    for s in LeaveOneSubjectOut(val_subjects=0.2).split(t):
        assert len(set(keys[s.val])) == 2                        # round(0.2 * 10)
    assert all(len(s.val) == 0 for s in LeaveOneSubjectOut(val_subjects=0).split(t))


def test_min_val_subjects_where_the_data_allow_it():
    """The recipe's validation set: a fraction of the training subjects, at least 3 where at
    most half of them is enough; never the training majority."""
    keys11, keys5 = (group_keys(subject_table(n_subjects=n), "subject") for n in (11, 5))
    for n, keys, want in ((11, keys11, 3), (5, keys5, 2)):
        for s in LeaveOneSubjectOut(val_subjects=0.2, min_val_subjects=3).split(
                subject_table(n_subjects=n)):
            assert len(set(keys[s.val])) == want          # 10 -> 3; 4 -> 2 (half)
            assert len(set(keys[s.train])) >= len(set(keys[s.val]))
    t = subject_table(n_subjects=40)
    keys = group_keys(t, "subject")
    for s in GroupKFoldBySubject(n_splits=10, val_fraction=0.2, min_val_subjects=3).split(t):
        assert len(set(keys[s.val])) == 7                 # round(0.2 * 36) > 3
    assert all(len(s.val) == 0 for s in
               LeaveOneSubjectOut(val_subjects=0, min_val_subjects=3).split(t))


def test_within_subject_kfold_groups_by_run_and_stays_inside_the_subject():
    t = subject_table(n_subjects=2, sessions=(3,))        # 3 sessions x 2 runs = 6 runs each
    subj, rec = group_keys(t, "subject"), group_keys(t, "recording")
    splits = list(WithinSubjectKFold(n_splits=3, by="recording", seed=1).split(t))
    assert len(splits) == 6 and (coverage_counts(t, splits, "recording") == 1).all()
    for s in splits:
        assert_disjoint(t, s, "recording")                 # no run on two sides
        assert len(set(subj[np.r_[s.train, s.val, s.test]])) == 1   # one subject only
        assert len(set(rec[s.test])) == 2 and len(set(rec[s.val])) == 1
        assert s.disjoint_by == s.val_disjoint_by == "recording"
    # the same seed gives the same folds; by session, each session is tested once
    again = list(WithinSubjectKFold(n_splits=3, by="recording", seed=1).split(t))
    assert all(np.array_equal(a.val, b.val) for a, b in zip(splits, again))
    by_session = list(WithinSubjectKFold(n_splits=5, by="session").split(t))
    assert len(by_session) == 6                            # min(5, 3 sessions) per subject
    assert (coverage_counts(t, by_session, "session") == 1).all()


def test_within_subject_kfold_with_two_runs_validates_on_trials_and_refuses_one_run():
    t = subject_table(n_subjects=1, sessions=(1,))        # one subject, two runs
    rec = group_keys(t, "recording")
    splits = list(WithinSubjectKFold(n_splits=5).split(t))
    assert len(splits) == 2
    for s in splits:
        assert len(set(rec[s.test])) == 1 and set(rec[s.val]) == set(rec[s.train])
        assert s.val_disjoint_by == "trial" and len(s.val) == 2     # 0.2 of 12 trials
    one_run = t[t["recording"].str.endswith("run0.edf")]
    with pytest.raises(ValueError, match="no subject has >= 2 recordings"):
        list(WithinSubjectKFold().split(one_run))
    with pytest.raises(ValueError, match="by='trial'"):
        WithinSubjectKFold(by="trial")


def test_loso_is_deterministic_per_seed():
    t = subject_table(n_subjects=8)
    a = list(LeaveOneSubjectOut(seed=1).split(t))
    assert same_splits(a, list(LeaveOneSubjectOut(seed=1).split(t)))
    assert not same_splits(a, list(LeaveOneSubjectOut(seed=2).split(t)))
    # the draw depends on the seed and the subjects, not on the order of the rows
    shuffled = t.sample(frac=1.0, random_state=0).reset_index(drop=True)
    keys, skeys = group_keys(t, "subject"), group_keys(shuffled, "subject")
    c = list(LeaveOneSubjectOut(seed=1).split(shuffled))
    assert [(x.test_group, set(keys[x.val])) for x in a] == \
        [(y.test_group, set(skeys[y.val])) for y in c]


def test_loso_refuses_tables_without_subjects_and_too_few_subjects():
    with pytest.raises(ValueError, match="bonn.*StratifiedRecordingKFold"):
        list(LeaveOneSubjectOut().split(segment_table()))
    with pytest.raises(ValueError, match="none would be left"):
        list(LeaveOneSubjectOut(val_subjects=1).split(subject_table(n_subjects=2)))


def test_subjects_are_scoped_by_dataset():
    t = pd.concat([subject_table(3, dataset="a"), subject_table(3, dataset="b")],
                  ignore_index=True)
    splits = list(LeaveOneSubjectOut().split(t))
    assert len(splits) == 6                                       # "00" of a is not "00" of b
    assert {s.name for s in splits} >= {"test-subject=a/00", "test-subject=b/00"}


# -- group k-fold ------------------------------------------------------------------------------

def test_group_kfold_covers_every_subject_once():
    t = subject_table(n_subjects=12)
    splits = list(GroupKFoldBySubject(n_splits=5, val_fraction=0.25, seed=0).split(t))
    assert len(splits) == 5
    assert (coverage_counts(t, splits, "subject") == 1).all()
    keys = group_keys(t, "subject")
    for s in splits:
        assert_disjoint(t, s, "subject")
        assert len(set(keys[s.test])) in (2, 3)
        n_train_subjects = 12 - len(set(keys[s.test]))
        assert len(set(keys[s.val])) == round(0.25 * n_train_subjects)
    assert same_splits(splits, list(GroupKFoldBySubject(5, 0.25, seed=0).split(t)))
    assert not same_splits(splits, list(GroupKFoldBySubject(5, 0.25, seed=1).split(t)))
    with pytest.raises(ValueError, match="need >= 5 subjects"):
        list(GroupKFoldBySubject(n_splits=5).split(subject_table(n_subjects=4)))


# -- stratified recording k-fold ---------------------------------------------------------------

def test_stratified_recording_kfold_keeps_recordings_together_and_stratifies():
    t = segment_table(n_per_class=(20, 20, 10))
    splits = list(StratifiedRecordingKFold(n_splits=5, val_fraction=0.2, seed=0).split(t))
    rec = group_keys(t, "recording")
    assert (coverage_counts(t, splits, "recording") == 1).all()
    for s in splits:
        assert_disjoint(t, s, "recording")
        # whole recordings: every window of a tested recording is in test
        assert np.array_equal(s.test, np.flatnonzero(np.isin(rec, rec[s.test])))
        test_labels = t.iloc[s.test].groupby("recording")["label"].first().value_counts()
        assert test_labels.to_dict() == {0: 4, 1: 4, 2: 2}       # 1/5 of each class
        val_labels = t.iloc[s.val].groupby("recording")["label"].first().value_counts()
        assert val_labels.to_dict() == {0: 3, 1: 3, 2: 2}        # round(0.2 * 16), (0.2 * 8)
    again = list(StratifiedRecordingKFold(n_splits=5, val_fraction=0.2, seed=0).split(t))
    assert same_splits(splits, again)


def test_stratified_recording_kfold_refuses_subject_data_and_unlabelled_windows():
    with pytest.raises(ValueError, match="subject ids"):
        list(StratifiedRecordingKFold().split(subject_table()))
    t = segment_table()
    t.loc[0, "label"] = -1
    with pytest.raises(ValueError, match="unlabelled"):
        list(StratifiedRecordingKFold().split(t))


# -- within-subject few-shot -------------------------------------------------------------------

def test_few_shot_takes_the_first_k_trials_of_each_class():
    t = subject_table(n_subjects=3, sessions=(2,), windows=6)
    t = t.sample(frac=1.0, random_state=0).reset_index(drop=True)   # order must not matter
    k = 3
    splits = list(WithinSubjectFewShot(k_per_class=k).split(t))
    assert len(splits) == 3
    keys = group_keys(t, "subject")
    for s in splits:
        assert len(s.val) == 0 and set(keys[s.train]) == set(keys[s.test]) == {s.test_group}
        assert_disjoint(t, s, "trial")
        mine = t[keys == s.test_group]
        for c, rows in mine.groupby("label"):
            ordered = rows.sort_values(["session", "recording", "onset_s"]).index.to_numpy()
            assert set(ordered[:k]) == set(s.train) & set(rows.index)
            assert set(ordered[k:]) == set(s.test) & set(rows.index)
        assert len(s.train) == 2 * k


def test_few_shot_validation_trials_follow_the_training_trials():
    t = subject_table(n_subjects=2, windows=6)
    for s in WithinSubjectFewShot(k_per_class=2, k_val_per_class=1).split(t):
        assert len(s.train) == 4 and len(s.val) == 2
        first = t.iloc[s.test].sort_values(["session", "recording", "onset_s"]).index
        latest = t.iloc[np.r_[s.train, s.val]].sort_values(["session", "recording",
                                                             "onset_s"]).index
        assert set(latest).isdisjoint(first)


def test_few_shot_orders_sessions_naturally_and_needs_enough_trials():
    t = subject_table(n_subjects=1, sessions=(2,), windows=4)
    t["session"] = t["session"].map({"1": "2", "2": "10"})     # "2" before "10"
    (s,) = WithinSubjectFewShot(k_per_class=2).split(t)
    assert set(t.iloc[s.train]["session"]) == {"2"}
    with pytest.raises(ValueError, match="syn/00 class 0"):
        list(WithinSubjectFewShot(k_per_class=8).split(t))


# -- cross-session -----------------------------------------------------------------------------

def test_cross_session_holds_each_session_out_once():
    t = subject_table(n_subjects=4, sessions=(2, 3, 1))          # subject 02 has one session
    splits = list(CrossSession(val_fraction=0.25, seed=0).split(t))
    sess, subj = group_keys(t, "session"), group_keys(t, "subject")
    assert len(splits) == 2 + 3 + 2 == CrossSession().get_n_splits(t)
    assert "syn/02" not in {subj[s.test][0] for s in splits}      # skipped, not tested
    eligible = np.flatnonzero(subj != "syn/02")
    assert (coverage_counts(t, splits, "session", rows=eligible) == 1).all()
    for s in splits:
        assert set(sess[s.test]) == {s.test_group}
        assert s.test_group not in set(sess[np.r_[s.train, s.val]])
        assert set(subj[np.r_[s.train, s.val, s.test]]) == {subj[s.test][0]}
        assert_disjoint(t, s, "trial")
        n_rest = len(s.train) + len(s.val)
        assert len(s.val) == pytest.approx(0.25 * n_rest, abs=1)
        assert s.name.endswith(f"test-session={s.test_group.rsplit('/', 1)[1]}")
    with pytest.raises(ValueError, match="no subject has >= 2 sessions"):
        list(CrossSession().split(subject_table(sessions=(1,))))


# -- the checks themselves ---------------------------------------------------------------------

def test_hand_made_leaky_splits_are_refused():
    t = subject_table(n_subjects=3, windows=2)
    keys = group_keys(t, "subject")
    a, b = np.flatnonzero(keys == "syn/00"), np.flatnonzero(keys == "syn/01")
    leaky = Split("leaky", train=np.r_[a, b[:1]], val=[], test=b[1:], test_group="syn/01")
    with pytest.raises(LeakageError, match=r"subjects \['syn/01'\] are in both train and test"):
        check_split(t, leaky)
    with pytest.raises(LeakageError, match="rows"):
        Split("same rows", train=a, val=[], test=a[:1], test_group="x")
    with pytest.raises(ValueError, match="outside"):
        check_split(t, Split("oob", train=[0], val=[], test=[len(t)], test_group="x"))
    with pytest.raises(ValueError, match="integer"):
        Split("floats", train=[0.5], val=[], test=[1], test_group="x")
    split = Split("ok", train=a, val=[], test=b, test_group="syn/01")
    check_split(t, split)
    with pytest.raises(ValueError):
        split.train[0] = 99                                       # read-only


def test_make_protocol_maps_names():
    assert set(PROTOCOLS) == {"loso", "group_kfold", "stratified_kfold", "few_shot",
                              "cross_session", "within_subject_kfold"}
    p = make_protocol("loso", val_subjects=2, seed=4)
    assert isinstance(p, LeaveOneSubjectOut) and p.val_subjects == 2 and p.seed == 4
    assert isinstance(make_protocol("few_shot", k_per_class=1), WithinSubjectFewShot)
    with pytest.raises(ValueError, match="unknown protocol 'lopo'"):
        make_protocol("lopo")


def test_fold_scaler_sees_training_rows_only():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 4, 50))
    split = Split("s", train=np.arange(20), val=[], test=np.arange(20, 30), test_group="x")
    scaler = fit_on_train(FoldScaler(), X, split)
    np.testing.assert_allclose(scaler.mean_[0, :, 0], X[:20].mean(axis=(0, 2)))
    np.testing.assert_allclose(scaler.std_[0, :, 0], X[:20].std(axis=(0, 2)))
    X2 = X.copy()
    X2[20:] += 1000.0                                             # test rows change ...
    again = fit_on_train(FoldScaler(), X2, split)
    np.testing.assert_array_equal(again.mean_, scaler.mean_)      # ... the fit does not
    Z = scaler.transform(X)
    np.testing.assert_allclose(Z[:20].mean(axis=(0, 2)), 0, atol=1e-12)


# -- on real corpus stores ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_tables(prepared_stores):
    from brainfm.data.loading import WindowDataset

    root, _ = prepared_stores
    return {name: WindowDataset([root / name]).table
            for name in ("eegmat", "bonn", "ssvep_exoskeleton")}


@pytest.mark.real_data
def test_loso_on_eegmat(real_tables):
    t = real_tables["eegmat"]
    splits = list(LeaveOneSubjectOut(val_subjects=3, seed=0).split(t))
    subjects = t["subject"].to_numpy()
    assert len(splits) == 36
    assert sorted(subjects[s.test][0] for s in splits) == sorted(set(subjects))
    assert (coverage_counts(t, splits, "subject") == 1).all()
    for s in splits:
        test, val, train = (set(subjects[s.parts()[p]]) for p in ("test", "val", "train"))
        assert len(test) == 1 and len(val) == 3 and len(train) == 32
        assert not test & val and not test & train and not val & train
        assert set(t.iloc[s.test]["label"]) == {0, 1}              # rest and arithmetic


@pytest.mark.real_data
def test_stratified_recording_kfold_on_bonn(real_tables):
    t = real_tables["bonn"]
    splits = list(StratifiedRecordingKFold(n_splits=5, seed=0).split(t))
    rec = t["recording"].to_numpy()
    assert (coverage_counts(t, splits, "recording") == 1).all()
    assert sum(len(set(rec[s.test])) for s in splits) == t["recording"].nunique() == 500
    for s in splits:
        parts = {p: set(rec[r]) for p, r in s.parts().items()}
        assert not parts["train"] & parts["test"] and not parts["val"] & parts["test"]
        assert not parts["train"] & parts["val"]
        assert np.array_equal(s.test, np.flatnonzero(np.isin(rec, list(parts["test"]))))


@pytest.mark.real_data
def test_within_subject_protocols_on_ssvep(real_tables):
    t = real_tables["ssvep_exoskeleton"]
    sessions = t.groupby(["subject", "session"]).ngroups
    splits = list(CrossSession(seed=0).split(t))
    assert len(splits) == sessions == 32                          # every subject has >= 2
    for s in splits:
        test = t.iloc[s.test]
        assert test["session"].nunique() == 1
        assert test["session"].iloc[0] not in set(t.iloc[np.r_[s.train, s.val]]["session"])
    runs = list(WithinSubjectKFold(n_splits=5, by="session").split(t))
    # 32 sessions; subject 10's 6 sessions are dealt into 5 folds
    assert len(runs) == 31 and (coverage_counts(t, runs, "session") == 1).all()
    for s in runs:   # subjects with 2 sessions validate on trials, the others on a session
        assert set(t.iloc[s.test]["subject"]) == set(t.iloc[s.train]["subject"])
        assert (s.val_disjoint_by == "session") == (t.iloc[s.test]["subject"].iloc[0]
                                                    in {"08", "10", "11", "12"})
    few = list(WithinSubjectFewShot(k_per_class=2).split(t))
    assert len(few) == 12 and all(len(s.train) == 8 for s in few)  # 2 trials x 4 classes

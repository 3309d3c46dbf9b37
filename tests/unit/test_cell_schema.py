"""What a results cell must hold: scores the metrics can give (NaN where they legitimately
are), and rows for the fold and each test subject."""
import numpy as np

from brainfm.bench.cell_schema import cell_problem
from brainfm.bench.metrics import classification_metrics

CONFIG = {"dataset": "eegmat_sample", "pipeline": "ts_lr", "fold": "test-subject=01", "seed": 0}


def _cell(per_subject: dict) -> dict:
    rows = [dict(CONFIG, protocol="loso", subject=subject, metric=m, value=v)
            for subject, scores in per_subject.items() for m, v in scores.items()]
    return {"config": dict(CONFIG), "rows": rows}


def test_a_subject_of_one_class_gives_nan_auroc_and_kappa_and_is_valid():
    one_class = classification_metrics(np.zeros(6, int), np.zeros(6, int),
                                       np.full((6, 2), 0.5), n_classes=2)
    assert np.isnan(one_class["auroc"]) and np.isnan(one_class["cohen_kappa"])
    both = classification_metrics(np.r_[np.zeros(3, int), np.ones(3, int)],
                                  np.array([0, 1, 0, 1, 1, 1]),
                                  np.linspace(0, 1, 6), n_classes=2)
    cell = _cell({"01": one_class, "__fold__": both})
    assert cell_problem(cell, CONFIG, subjects={"01"}) is None


def test_nan_where_no_metric_gives_it_is_refused():
    scores = classification_metrics(np.array([0, 1, 1]), np.array([0, 1, 0]), n_classes=2)
    scores["balanced_accuracy"] = float("nan")
    assert cell_problem(_cell({"__fold__": scores})) == (
        "row 1 (subject '__fold__'): balanced_accuracy is NaN")


def test_a_cell_must_score_the_subjects_its_fold_tests():
    scores = classification_metrics(np.array([0, 1, 1]), np.array([0, 1, 0]), n_classes=2)
    cell = _cell({"01": scores, "__fold__": scores})
    assert cell_problem(cell, CONFIG, subjects={"01", "02"}) == (
        "no rows for test subject(s) 02")
    assert "another cell's (fold 'test-subject=01')" in cell_problem(
        cell, {**CONFIG, "fold": "test-subject=02"})

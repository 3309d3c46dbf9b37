"""benchmarks/convergence.py reads validation curves through the results store: a corrupt
cell is set aside with a warning (as brainfm-bench does), not a crash."""
import pytest

from benchmarks import convergence
from brainfm.bench.results import ResultsStore


def _rows(pipeline: str, fold: int) -> list[dict]:
    """The fold's pooled scores, as the runner writes them (a cell without them is invalid)."""
    from brainfm.bench.cell_schema import FOLD_ROW
    from brainfm.bench.metrics import MULTICLASS_KEYS

    return [{"dataset": "eegmat", "pipeline": pipeline, "protocol": "loso", "fold": fold,
             "subject": FOLD_ROW, "seed": 0, "metric": m, "value": 0.5}
            for m in MULTICLASS_KEYS]


def test_curves_come_from_the_cells_and_a_corrupt_cell_is_set_aside(tmp_path):
    store = ResultsStore(tmp_path)
    for fold, curve in enumerate(([0.6, 0.7, 0.72], [0.5, 0.8, 0.79])):
        store.put(f"k{fold}", {"dataset": "eegmat", "pipeline": "finetune", "fold": fold,
                               "seed": 0, "info": {"val_curve": curve, "selected_epoch": 3,
                                                   "selected_on": "val/auroc"}},
                  _rows("finetune", fold))
    store.put("csp", {"dataset": "eegmat", "pipeline": "csp", "fold": 0, "seed": 0,
                      "info": {"seconds": 1.0}}, _rows("csp", 0))     # no curve: left out
    (tmp_path / "cells" / "cut.json").write_text('{"config": {"dataset"')
    with pytest.warns(RuntimeWarning, match="cut.json: corrupt results cell"):
        curves = convergence.read_curves(tmp_path)
    assert list(curves) == [("eegmat", "finetune")]
    entry = curves["eegmat", "finetune"]
    assert [c.tolist() for c in entry["curves"]] == [[0.6, 0.7, 0.72], [0.5, 0.8, 0.79]]
    assert entry["selected"] == [3, 3] and entry["on"] == "val/auroc"


def test_a_folder_without_cells_is_named(tmp_path):
    with pytest.raises(SystemExit, match="no cells/ folder"):
        convergence.read_curves(tmp_path)
    assert not (tmp_path / "cells").exists()

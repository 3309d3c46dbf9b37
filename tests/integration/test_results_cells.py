"""A truncated or garbled results cell is named, set aside and computed again; the re-run
gives the table an uninterrupted run gives."""
import json

import pytest

from brainfm.bench.runner import run_benchmark

from ..helpers import run_tool, user_experiment

pytestmark = pytest.mark.real_data

EXPERIMENT = {"datasets": ["eegmat_sample"], "seeds": [0], "max_folds": 2,
              "protocols": {"default": {"name": "loso"}},
              "pipelines": {"ts_lr": {"kind": "classical", "baseline": "ts_lr"}}}


def _damaged(good: bytes, damage: str, other: bytes) -> bytes:
    """A cell file's content after ``damage``; ``other``: another cell of the same run."""
    doc = json.loads(good)
    rows = doc["rows"]
    if damage == "truncated":
        return good[:len(good) // 2]
    if damage == "binary":
        return b"\x00\xff\xfe" * 10
    if damage == "not a cell":
        return b'{"rows": 3}'
    if damage == "empty":
        return b'{"config": {}, "rows": []}'
    if damage == "score out of range":
        row = next(r for r in rows if r["metric"] == "balanced_accuracy")
        row["value"] = 7.5
    elif damage == "rows not records":
        doc["rows"] = [1, 2, 3]
    elif damage == "value not a number":
        rows[0]["value"] = "abc"
    elif damage == "infinite score":
        rows[-1]["value"] = float("inf")
    elif damage == "a subject's rows missing":
        doc["rows"] = [r for r in rows if r["subject"] == "__fold__"]
    elif damage == "another fold's cell":
        return other
    return json.dumps(doc).encode()


DAMAGES = ["truncated", "not a cell", "binary", "empty", "score out of range",
           "rows not records", "value not a number", "infinite score",
           "a subject's rows missing", "another fold's cell", "a folder"]


@pytest.mark.parametrize("damage", DAMAGES)
def test_invalid_cell_is_set_aside_and_recomputed(tmp_path, sample_store_root, damage):
    """A cell that does not parse, or parses but is no valid result (out-of-range or
    non-numeric scores, rows missing, another cell's content, a folder in its place), is
    named, set aside and computed again: the table is the uninterrupted run's."""
    first = run_benchmark(EXPERIMENT, sample_store_root, tmp_path, progress=False)
    assert first["computed"] == 2
    expected = (tmp_path / "results.csv").read_text()
    cell, other = sorted((tmp_path / "cells").glob("*.json"))
    good = cell.read_bytes()
    if damage == "a folder":
        cell.unlink()
        cell.mkdir()
        (cell / "notes.txt").write_text("the user's")
    else:
        cell.write_bytes(_damaged(good, damage, other.read_bytes()))
    with pytest.warns(RuntimeWarning, match=rf"{cell}: corrupt results cell"):
        again = run_benchmark(EXPERIMENT, sample_store_root, tmp_path, progress=False)
    assert again["computed"] == 1 and again["skipped"] == 1
    assert (tmp_path / "results.csv").read_text() == expected
    assert json.loads(cell.read_text())["rows"] == json.loads(good)["rows"]
    aside = list((tmp_path / "cells" / "corrupt").glob(f"{cell.stem}.*.json"))
    assert len(aside) == 1 and again["set_aside"] == [(str(cell), str(aside[0]))]
    if damage == "a folder":   # moved whole, the user's file in it
        assert (aside[0] / "notes.txt").read_text() == "the user's"
    else:
        assert aside[0].read_bytes() != good


def test_brainfm_bench_names_the_cell_it_set_aside(tmp_path, sample_store_root):
    """The command a user runs: a cell with a balanced accuracy of 7.5 is not averaged in;
    the summary says which cell was set aside, and the table is the uninterrupted run's."""
    configs = user_experiment(
        tmp_path, "cells", "name: cells\ndatasets: [eegmat_sample]\nmax_folds: 2\n"
        "protocols:\n  default: {name: loso}\n"
        "pipelines:\n  ts_lr: {kind: classical, baseline: ts_lr}\n")
    args = ["--config-dir", configs, "experiment=cells",
            f"store_root={sample_store_root}", f"results_dir={tmp_path}/results", "progress=false"]
    first = run_tool("brainfm-bench", *args, f"hydra.run.dir={tmp_path}/run1", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    cell = sorted((tmp_path / "results" / "cells").glob("*.json"))[0]
    cell.write_bytes(_damaged(cell.read_bytes(), "score out of range", b""))
    again = run_tool("brainfm-bench", *args, f"hydra.run.dir={tmp_path}/run2", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "1 cells computed, 1 already done" in again.stdout
    assert "1 invalid results cell(s) set aside and computed again: " f"{cell} -> " in again.stdout
    assert "balanced_accuracy 7.5 outside [0, 1]" in again.stderr
    assert ((tmp_path / "run2" / "results.csv").read_text()
            == (tmp_path / "run1" / "results.csv").read_text())


def test_cells_follow_the_umask(tmp_path, sample_store_root):
    import os
    import stat

    old = os.umask(0o002)
    try:
        run_benchmark(EXPERIMENT, sample_store_root, tmp_path, progress=False)
    finally:
        os.umask(old)
    cells = list((tmp_path / "cells").glob("*.json"))
    assert cells and all(stat.S_IMODE(c.stat().st_mode) == 0o664 for c in cells)

"""A truncated or garbled results cell is named, set aside and computed again; the re-run
gives the table an uninterrupted run gives."""
import json
from pathlib import Path

import pytest

from brainfm.bench.runner import run_benchmark
from brainfm.data.prep import prepare

from ..helpers import load_configs

pytestmark = pytest.mark.real_data

SAMPLE = Path(__file__).resolve().parents[2] / "brainfm" / "sample_data"
EXPERIMENT = {"datasets": ["eegmat_sample"], "seeds": [0], "max_folds": 2,
              "protocols": {"default": {"name": "loso"}},
              "pipelines": {"ts_lr": {"kind": "classical", "baseline": "ts_lr"}}}


@pytest.fixture(scope="module")
def store_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cells_stores")
    spec, std = load_configs("eegmat_sample")
    prepare(spec, std, SAMPLE, root / "eegmat_sample", progress=False, n_jobs=1)
    return root


@pytest.mark.parametrize("damage", ["truncated", "not a cell", "binary"])
def test_corrupt_cell_is_set_aside_and_recomputed(tmp_path, store_root, damage):
    first = run_benchmark(EXPERIMENT, store_root, tmp_path, progress=False)
    assert first["computed"] == 2
    expected = (tmp_path / "results.csv").read_text()
    cell = sorted((tmp_path / "cells").glob("*.json"))[0]
    good = cell.read_bytes()
    cell.write_bytes({"truncated": good[:len(good) // 2], "not a cell": b'{"rows": 3}',
                      "binary": b"\x00\xff\xfe" * 10}[damage])
    with pytest.warns(RuntimeWarning, match=rf"{cell}: corrupt results cell"):
        again = run_benchmark(EXPERIMENT, store_root, tmp_path, progress=False)
    assert again["computed"] == 1 and again["skipped"] == 1
    assert (tmp_path / "results.csv").read_text() == expected
    assert json.loads(cell.read_text())["rows"] == json.loads(good)["rows"]
    aside = list((tmp_path / "cells" / "corrupt").glob(f"{cell.stem}.*.json"))
    assert len(aside) == 1 and aside[0].read_bytes() != good


def test_cells_follow_the_umask(tmp_path, store_root):
    import os
    import stat

    old = os.umask(0o002)
    try:
        run_benchmark(EXPERIMENT, store_root, tmp_path, progress=False)
    finally:
        os.umask(old)
    cells = list((tmp_path / "cells").glob("*.json"))
    assert cells and all(stat.S_IMODE(c.stat().st_mode) == 0o664 for c in cells)

"""Packing and manifest writing are crash-safe at every step: a run killed between any two
of its file commits (every one is a rename) and then re-run ends with the same store as a
run that was never interrupted. Two writers on one store take turns."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from brainfm.data.prep import prepare
from brainfm.data.store import CorpusStore

from ..helpers import load_configs

pytestmark = [pytest.mark.real_data, pytest.mark.slow]

SAMPLE = Path(__file__).resolve().parents[2] / "brainfm" / "sample_data" / "eegmat"


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, no ``except Exception`` catches it."""


def _prep(store, **kw):
    spec, std = load_configs("eegmat_sample")
    return prepare(spec, std, SAMPLE.parent, store, progress=False, n_jobs=1, **kw)


def _content(store: Path):
    """What a reader gets from a store, independent of the packs' random file names."""
    s = CorpusStore(store)
    windows = s.windows.drop(columns=["pack", "pack_index"])
    recordings = s.recordings.drop(columns=["provenance"])
    arrays = np.stack([s.window(i) for i in range(len(s))])
    files = sorted(p.relative_to(store).as_posix() for p in store.rglob("*")
                   if p.is_file() and not p.name.startswith("pack-"))
    packs = sorted(p.name.split("-")[1] for p in (store / "packs").iterdir())
    return windows, recordings, arrays, files, packs


def _same(a, b):
    assert a[0].equals(b[0]) and a[1].equals(b[1])
    assert np.array_equal(a[2], b[2])
    assert a[3] == b[3] and a[4] == b[4]


@pytest.fixture(scope="module")
def grown(tmp_path_factory):
    """A store of the first 5 recordings, and the clean result of growing it to all 8."""
    root = tmp_path_factory.mktemp("packing")
    base = root / "base" / "eegmat_sample"
    _prep(base, limit=5)
    clean = root / "clean" / "eegmat_sample"
    shutil.copytree(base, clean)
    _prep(clean)
    return base, _content(clean)


def _count_renames(store) -> int:
    calls = []
    real = os.replace

    def counting(*a, **k):
        calls.append(a)
        return real(*a, **k)

    os.replace = counting
    try:
        _prep(store)
    finally:
        os.replace = real
    return len(calls)


def test_kill_at_every_commit_then_rerun_equals_a_clean_run(tmp_path, grown, monkeypatch):
    base, clean = grown
    n = _count_renames(_copy(base, tmp_path / "count"))
    assert n >= 10  # 3 shards, 3 records, store.json, a pack, packs.json, 2 tables, summary
    real = os.replace
    for k in range(n):
        store = _copy(base, tmp_path / f"kill{k}")
        calls = []

        def dying(*a, **kw):
            calls.append(a)
            if len(calls) > k:
                raise Killed(f"killed before rename {k}: {a[1]}")
            return real(*a, **kw)

        monkeypatch.setattr(os, "replace", dying)
        with pytest.raises(Killed):
            _prep(store)
        monkeypatch.setattr(os, "replace", real)
        _prep(store)
        _same(_content(store), clean)


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst / src.name)
    return dst / src.name


def test_two_writers_on_one_store_take_turns(tmp_path):
    """Two brainfm-prep processes started together on a fresh store: both succeed, the second
    waits for the first, and the store is whole."""
    cli = [str(Path(sys.executable).with_name("brainfm-prep")), "dataset=eegmat_sample",
           f"store_root={tmp_path}", "progress=false", "n_jobs=1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(cli + [f"hydra.run.dir={tmp_path}/h{i}"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for i in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    assert any("being written by another process" in err for _, err in outs)
    assert sorted("8 done" in out for out, _ in outs) == [False, True]
    store = CorpusStore(tmp_path / "eegmat_sample")
    assert len(store) == 96
    for pack in store.windows["pack"].unique():
        assert np.isfinite(store.array(pack)).all()
    assert not list((tmp_path / "eegmat_sample" / "shards").glob("*.npy"))


def test_a_reader_waits_for_the_writer(tmp_path):
    """While a writer holds the store's lock (here: a process committing by hand), opening
    the store waits for it, then sees the committed store."""
    import time

    store = tmp_path / "eegmat_sample"
    _prep(store, limit=2)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "from brainfm.data.store import store_lock\n"
         f"with store_lock({str(store)!r}):\n"
         "    print('held', flush=True)\n    time.sleep(3)\n"],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    t0 = time.perf_counter()
    opened = CorpusStore(store)
    waited = time.perf_counter() - t0
    holder.wait(timeout=60)
    assert waited > 1.5 and len(opened) == 24

"""A corpus store is a folder brainfm made: overwrite and clean-up touch only brainfm's own
files inside it, names cannot climb out of the store root, stores never land inside the
recordings, files get the user's umask, and a misconfigured dataset fails before work."""
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from brainfm.data.prep import prepare
from brainfm.data.store import CorpusStore, StoreError
from brainfm.errors import ConfigError

from ..helpers import load_configs

pytestmark = pytest.mark.real_data

SAMPLE = Path(__file__).resolve().parents[2] / "brainfm" / "sample_data" / "eegmat"


@pytest.fixture
def sample():
    """The embedded real sample (4 subjects of PhysioNet's mental arithmetic EEG)."""
    return load_configs("eegmat_sample")


def _prep(spec, std, store, **kw):
    return prepare(spec, std, SAMPLE.parent, store, progress=False, n_jobs=1, **kw)


def _tree(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*")
            if p.is_file()}


def test_overwrite_refuses_a_folder_that_is_not_a_store(tmp_path, sample):
    """store_root pointed at a folder of recordings: nothing is deleted, the error says why."""
    folder = tmp_path / "eegmat_sample"
    (folder / "records").mkdir(parents=True)
    shutil.copy(SAMPLE / "Subject00_1.edf", folder / "records" / "Subject00_1.edf")
    shutil.copy(SAMPLE / "Subject00_2.edf", folder / "Subject00_2.edf")
    (folder / "README").write_text("my notes")
    (folder / ".notes.swp.tmp").write_text("an editor's file")
    before = _tree(folder)
    for overwrite in (True, False):
        with pytest.raises(StoreError, match="not a brainfm store.*README"):
            _prep(*sample, folder, overwrite=overwrite)
    assert _tree(folder) == before


def test_overwrite_and_cleanup_touch_only_brainfm_files(tmp_path, sample):
    store = tmp_path / "eegmat_sample"
    _prep(*sample, store, limit=2)
    foreign = {"records/mine.txt": b"keep", "packs/pack-notes.txt": b"keep",
               "extra/.draft.tmp": b"keep", "extra/x.npy": b"keep"}
    for rel, payload in foreign.items():
        (store / rel).parent.mkdir(exist_ok=True)
        (store / rel).write_bytes(payload)
    (store / "shards" / ".Subject00_1.edf-1.npy.abc.tmp").write_bytes(b"left by a kill")
    summary = _prep(*sample, store, overwrite=True)
    assert summary.done == 8 and summary.skipped == 0
    assert len(CorpusStore(store)) == 96
    for rel, payload in foreign.items():
        assert (store / rel).read_bytes() == payload, rel
    assert not list(store.rglob("shards/.*.tmp"))


@pytest.mark.parametrize("name", ["..", "../../escaped", "a/b", "/abs", ".hidden"])
def test_dataset_names_cannot_leave_the_store_root(tmp_path, name):
    root = tmp_path / "stores"
    root.mkdir()
    spec, std = load_configs("eegmat_sample", [f"dataset.name='{name}'"])
    with pytest.raises(ConfigError, match="cannot name a store folder"):
        prepare(spec, std, SAMPLE.parent, root / spec.name, progress=False, n_jobs=1)
    assert sorted(tmp_path.rglob("*")) == [root]


@pytest.mark.parametrize("where", ["data_root", "inside"])
def test_store_inside_the_recordings_is_refused(tmp_path, where):
    data = tmp_path / "data"
    shutil.copytree(SAMPLE, data / "eegmat")
    spec, std = load_configs("eegmat_sample", [f"dataset.path={data / 'eegmat'}"])
    store = data / spec.name if where == "data_root" else data / "eegmat" / "stores" / "x"
    before = _tree(data)
    with pytest.raises(StoreError, match="inside the recordings"):
        prepare(spec, std, data, store, progress=False, n_jobs=1)
    assert _tree(data) == before and not store.exists()


def test_cli_store_root_equal_to_data_root_exits_nonzero(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(SAMPLE, data / "eegmat")
    cli = [str(Path(sys.executable).with_name("brainfm-prep"))]
    out = subprocess.run(cli + ["dataset=eegmat_sample", f"dataset.path={data / 'eegmat'}",
                                f"data_root={data}", f"store_root={data}", "progress=false",
                                f"hydra.run.dir={tmp_path / 'hydra'}"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and "inside the recordings" in out.stderr
    assert sorted(p.name for p in data.iterdir()) == ["eegmat"]


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_store_files_follow_the_umask(tmp_path, sample, umask):
    old = os.umask(umask)
    try:
        _prep(*sample, tmp_path / "s", limit=2)
    finally:
        os.umask(old)
    modes = {p.relative_to(tmp_path).as_posix(): stat.S_IMODE(p.stat().st_mode)
             for p in (tmp_path / "s").rglob("*") if p.is_file()}
    assert modes and all(m == 0o666 & ~umask for m in modes.values()), modes


def test_path_regex_matching_no_file_is_a_config_error(tmp_path):
    spec, std = load_configs("eegmat_sample", ["dataset.path_regex='sub-(?P<subject>\\d+)'"])
    with pytest.raises(ConfigError, match=r"path_regex .* matches none of its 8 recordings"):
        prepare(spec, std, SAMPLE.parent, tmp_path / "s", progress=False, n_jobs=1)
    assert not (tmp_path / "s").exists()


def test_include_matching_no_file_is_a_config_error(tmp_path):
    spec, std = load_configs("eegmat_sample", ["dataset.include=['*.bdf']"])
    with pytest.raises(ConfigError, match=r"no recording under .* matches include"):
        prepare(spec, std, SAMPLE.parent, tmp_path / "s", progress=False, n_jobs=1)


def test_event_labels_on_fixed_windows_is_a_config_error(tmp_path):
    spec, std = load_configs("eegmat_sample", ["dataset.labels.source=events"])
    with pytest.raises(ConfigError, match="every window unlabelled"):
        prepare(spec, std, SAMPLE.parent, tmp_path / "s", progress=False, n_jobs=1)


def test_overwrite_deletes_what_the_manifest_lists_not_what_a_pattern_matches(tmp_path,
                                                                               sample):
    """Files a user added under brainfm's own names and patterns: a record and a shard of a
    recording the store never had, a pack no index lists, a dot-file ending in .tmp."""
    store = tmp_path / "eegmat_sample"
    _prep(*sample, store, limit=2)
    real_record = json.loads(next((store / "records").glob("*.json")).read_text())
    victims = {"records/victim.json": json.dumps({**real_record, "key": "victim"}),
               "shards/victim.npy": "user array", "packs/pack-user.npy": "user pack",
               ".mine.tmp": "user temp", "records/.mine.tmp": "user temp"}
    for rel, text in victims.items():
        (store / rel).parent.mkdir(exist_ok=True)
        (store / rel).write_text(text)
    user = {rel: (store / rel).read_bytes() for rel in victims}
    summary = _prep(*sample, store, overwrite=True, limit=3)
    assert summary.done == 3 and summary.skipped == 0
    assert len(CorpusStore(store).recordings) == 3
    assert {rel: (store / rel).read_bytes() for rel in victims} == user
    _prep(*sample, store, limit=3)  # a plain re-run (packs kept) leaves them too
    assert {rel: (store / rel).read_bytes() for rel in victims} == user


def test_two_stores_whose_packs_link_to_one_folder_cannot_delete_each_other(tmp_path,
                                                                            sample):
    """Both stores' packs moved into one folder and each packs/ linked to it: re-preparing
    either (which repacks and cleans up) would delete the other's pack; it is refused, and
    so is reading a pack outside its store."""
    shared = tmp_path / "shared_packs"
    shared.mkdir()
    stores = [tmp_path / side / "eegmat_sample" for side in ("a", "b")]
    for store in stores:
        _prep(*sample, store, limit=2)
        for pack in (store / "packs").iterdir():
            shutil.move(str(pack), str(shared / pack.name))
        (store / "packs").rmdir()
        (store / "packs").symlink_to(shared, target_is_directory=True)
    before = _tree(shared)
    assert len(before) == 2
    for store in stores:
        for kw in ({"limit": 3}, {"limit": 2, "overwrite": True}):
            with pytest.raises(StoreError, match=f"{store}: packs resolves to {shared}, "
                                                 "outside the store"):
                _prep(*sample, store, **kw)
        with pytest.raises(StoreError, match="outside the store"):
            CorpusStore(store).window(0)
    assert _tree(shared) == before

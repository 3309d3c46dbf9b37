"""The corpus store: one memory-mapped shard per recording plus manifest tables.

Layout of a store folder::

    store.json            format, dataset spec, standardisation, dtype, config hash
    shards/<key>.npy      one recording's windows while a run is under way
    packs/pack-CxT-*.npy  when a run ends: all windows of shape (C, T), (n, C, T) float16/32
    packs.json            recording key -> [pack, first row, window count]
    records/<key>.json    per-recording result: ok (with channels, sensors, windows) or failed
    recordings.parquet    one row per recording (the manifest's recording table)
    windows.parquet       one row per window (the manifest's window table)

Every file is written to a temporary name and renamed into place, and a shard counts only
once its record exists, and the store only once its manifest exists: an interrupted run
leaves nothing a reader would take as valid. A folder is a store only if brainfm made it
(its store.json); brainfm writes into no other non-empty folder and deletes only its own
files there. One writer at a time holds the store's lock (``.brainfm.lock``); a reader opens
the manifest under the same lock, so it never sees a half-committed store.
"""
from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..errors import BrainfmError

STORE_FORMAT = "brainfm-store/3"  # 2: windows packed by shape; 3: max_abs column
LOCK_NAME = ".brainfm.lock"
# what brainfm itself writes at the top of a store (all else there belongs to someone else)
MANIFEST_FILES = ("store.json", "windows.parquet", "recordings.parquet", "summary.json",
                  "packs.json", "packs.pending.json")
#: The folders of a store; each must be a real folder of the store, not a link elsewhere.
STORE_FOLDERS = ("records", "shards", "packs")
#: The temporaries _tmp_path makes for brainfm's own files (".<name>.<random>.tmp").
_TEMPORARY = re.compile(r"^\.[^/]+\.(json|npy|parquet)\.[A-Za-z0-9_]+\.tmp$")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$")


class StoreError(BrainfmError, RuntimeError):
    """A store folder is missing, incomplete or was prepared with other settings."""


# ---- atomic writes ------------------------------------------------------------------------
def _umask() -> int:
    """This process's umask, read without changing it where Linux allows."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _tmp_path(path: Path) -> Path:
    """A fresh temporary beside ``path``, with the permissions an ordinary file gets (mkstemp
    makes 0600 files: a store or model shared between users would be half unreadable)."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, 0o666 & ~_umask())
    os.close(fd)
    return Path(name)


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_path(path)
    try:
        tmp.write_bytes(payload)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def to_json(obj, indent: int | None = None) -> str:
    """JSON text of records holding numpy arrays and scalars, paths and tuples."""
    return json.dumps(obj, indent=indent, sort_keys=True, default=_json_default)


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, to_json(obj, indent=1).encode())


def atomic_save_array(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_path(path)
    try:
        with open(tmp, "wb") as fh:
            np.save(fh, array, allow_pickle=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_parquet(path: Path, frame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_path(path)
    try:
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


#: The packs a run announced before writing them (brainfm.data.packing), so that an
#: interrupted run's unfinished packs can be found and removed.
PENDING = "packs.pending.json"


def remove_stale_temporaries(root: Path) -> int:
    """Delete the temporaries an interrupted run of brainfm left in the store ``root``: its
    own temporary names in its own folders, and the unfinished packs its pending list names
    (packing.py); returns how many. Call it under the lock."""
    n = 0
    check_store_folders(root)
    for sub in ("", *STORE_FOLDERS):
        folder = root / sub
        if not folder.is_dir():
            continue
        for tmp in folder.iterdir():
            if _TEMPORARY.match(tmp.name) and tmp.is_file() and not tmp.is_symlink():
                tmp.unlink(missing_ok=True)
                n += 1
    for name in pending_packs(root):
        partial = store_path(root, f"{name}.partial")
        if partial.is_file():
            partial.unlink()
            n += 1
    return n


def pending_packs(root: Path) -> list[str]:
    """Packs a run announced before writing them, and the packs they replace: what
    remove_unreferenced must look at even after a kill lost the index naming them."""
    path = root / PENDING
    names = json.loads(path.read_text()) if path.exists() else []
    return [str(n) for n in names] if isinstance(names, list) else []


def store_path(root: Path, relative: str) -> Path:
    """``root / relative``, refused when it resolves outside the store (a pack named
    ``../x`` in a manifest, or a ``packs/`` folder linked to a folder another store shares,
    where one store's clean-up would delete the other's packs)."""
    path = Path(root) / str(relative)
    inside = Path(root).resolve()
    if not path.resolve().is_relative_to(inside) or ".." in Path(str(relative)).parts:
        raise StoreError(f"{root}: {relative} resolves to {path.resolve()}, outside the store: "
                         "a store's files must lie in the store's own folders (records/, "
                         "shards/, packs/ are real folders, not links elsewhere) -> replace "
                         "the link with a folder and prepare the store again")
    return path


def check_store_folders(root: Path) -> None:
    """Refuse a store whose records/, shards/ or packs/ lead outside it (see store_path)."""
    for sub in STORE_FOLDERS:
        store_path(root, sub)


# ---- what a store is ----------------------------------------------------------------------
def check_store_name(name: str, what: str = "dataset.name") -> str:
    """A dataset or store name that stays one folder below the store root."""
    name = str(name)
    if not _NAME.match(name) or ".." in name:
        raise StoreError(f"{what}={name!r} cannot name a store folder: use letters, digits, "
                         "'_', '-', '.' and '+' only (no path separators, no '..')")
    return name


def is_store(root: Path) -> bool:
    """Whether brainfm made ``root`` (it holds a brainfm store.json)."""
    meta = Path(root) / "store.json"
    if not meta.is_file():
        return False
    try:
        return str(json.loads(meta.read_text()).get("format", "")).startswith("brainfm-store/")
    except (ValueError, OSError, AttributeError):
        return False


def claim_store_folder(root: Path, data_roots=()) -> None:
    """Refuse to write a store into a folder brainfm did not make, or into the recordings.

    ``root`` must be new, empty (but for brainfm's lock file) or a brainfm store, and lie
    outside every folder in ``data_roots``.
    """
    root = Path(root)
    where = root.resolve()
    for data in data_roots:
        data = Path(data).resolve()
        if where == data or data in where.parents:
            raise StoreError(f"store folder {root} lies inside the recordings at {data}: "
                             "brainfm does not write into the data it reads -> set store_root "
                             "(or $BRAINFM_STORE_ROOT) to a folder outside the data root")
    if root.exists() and not root.is_dir():
        raise StoreError(f"store folder {root} is a file -> choose another store_root")
    if root.is_dir() and not is_store(root):
        foreign = sorted(p.name for p in root.iterdir() if p.name != LOCK_NAME)
        if foreign:
            shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
            raise StoreError(f"{root} is not a brainfm store (no store.json) but holds files "
                             f"({shown}): brainfm writes stores only into new or empty "
                             "folders and never deletes what it did not write -> choose "
                             "another store_root or dataset.name")


@contextmanager
def store_lock(root: Path, timeout: float = -1, shared_read: bool = False):
    """Hold the store's advisory lock (``filelock``); ``timeout`` < 0 waits as long as it
    takes, saying so. ``shared_read``: a reader that cannot create the lock file (a store on
    read-only media) goes on without it."""
    from filelock import FileLock, Timeout

    path = Path(root) / LOCK_NAME
    try:
        lock = FileLock(str(path), mode=0o666 & ~_umask())  # others sharing the store lock too
        lock.acquire(timeout=0)
    except Timeout:
        print(f"brainfm: {root} is being written by another process (lock {path}); "
              "waiting for it to finish", file=sys.stderr, flush=True)
        try:
            lock.acquire(timeout=timeout)
        except Timeout:
            raise StoreError(f"{root}: another process still holds {path} after {timeout:g} "
                             "s -> wait for it, or stop it (the lock goes with the process)"
                             ) from None
    except OSError:
        if not shared_read:
            raise
        yield
        return
    try:
        yield
    finally:
        lock.release()


# ---- reading ------------------------------------------------------------------------------
class CorpusStore:
    """Read access to a finished store; shards open lazily, once per process.

    Safe with DataLoader workers: memory maps are never pickled, each worker process opens
    its own on first use.
    """

    def __init__(self, root):
        import pandas as pd

        self.root = Path(root)
        meta = self.root / "store.json"
        if not meta.exists():
            raise StoreError(f"{self.root}: not a brainfm store (no store.json); "
                             "create it with brainfm-prep")
        with store_lock(self.root, shared_read=True):
            self.meta = json.loads(meta.read_text())
            if self.meta.get("format") != STORE_FORMAT:
                raise StoreError(f"{self.root}: store format {self.meta.get('format')!r}, "
                                 f"this brainfm reads {STORE_FORMAT!r}; re-run brainfm-prep")
            win, recs = self.root / "windows.parquet", self.root / "recordings.parquet"
            if not (win.exists() and recs.exists()):
                raise StoreError(f"{self.root}: the store is incomplete (no manifest); an "
                                 "earlier brainfm-prep was interrupted: run it again to finish")
            self.windows = pd.read_parquet(win)
            self.recordings = pd.read_parquet(recs)
        ok = self.recordings[self.recordings["status"] == "ok"]
        self._sensors = {k: np.asarray(json.loads(s), dtype=np.float32)
                         for k, s in zip(ok["key"], ok["sensors"])}
        self._shards: dict[str, np.ndarray] = {}
        self._pid = os.getpid()

    # pickling for DataLoader workers: drop open memory maps
    def __getstate__(self):
        state = dict(self.__dict__)
        state["_shards"] = {}
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)

    @property
    def name(self) -> str:
        return self.meta["dataset"]["name"]

    @property
    def classes(self) -> list[str]:
        return list(self.meta["dataset"]["labels"]["classes"])

    @property
    def sfreq(self) -> float:
        return float(self.meta["sfreq"])

    def __len__(self) -> int:
        return len(self.windows)

    def array(self, name: str) -> np.ndarray:
        """The memory-mapped (n_windows, C, T) array of one pack (``packs/...npy``)."""
        if os.getpid() != self._pid:
            self._shards, self._pid = {}, os.getpid()
        arr = self._shards.get(name)
        if arr is None:
            arr = np.load(store_path(self.root, name), mmap_mode="r", allow_pickle=False)
            # a plain ndarray view of the map: slicing np.memmap runs Python code per call
            arr = arr.view(np.ndarray)
            self._shards[name] = arr
        return arr

    def recording_windows(self, key: str) -> np.ndarray:
        """All windows of one recording, (n_windows, C, T), as a view into its pack."""
        rows = self.windows[self.windows["key"] == key]
        if rows.empty:
            raise KeyError(f"{self.root}: no windows for recording key {key!r}")
        first = int(rows["pack_index"].iloc[0])
        return self.array(rows["pack"].iloc[0])[first:first + len(rows)]

    def sensors(self, key: str) -> np.ndarray:
        return self._sensors[key]

    def ch_names(self, key: str) -> list[str]:
        """Channel names of one recording (read from the manifest when asked)."""
        row = self.recordings.loc[self.recordings["key"] == key, "ch_names"]
        if row.empty:
            raise KeyError(f"{self.root}: no recording with key {key!r}")
        return json.loads(row.iloc[0])

    def recording_ids(self) -> dict[str, str]:
        """A location-free identity per recording -> its relative path: the file name, original
        rate and channel count, hashed. The same recordings under another dataset name, in
        another folder, or cropped, share ids (how a benchmark finds that a checkpoint was
        pretrained on its test recordings)."""
        import hashlib

        ok = self.recordings[self.recordings["status"] == "ok"]
        out = {}
        for rel, sfreq, n_ch in zip(ok["relpath"], ok["orig_sfreq"], ok["orig_channels"]):
            ident = f"{Path(str(rel)).name}|{float(sfreq):g}|{int(n_ch)}"
            out[hashlib.sha1(ident.encode()).hexdigest()[:12]] = str(rel)
        return out

    def window(self, i: int) -> np.ndarray:
        """Window ``i`` of the window table as float32 (C, T)."""
        row = self.windows.iloc[i]
        return np.asarray(self.array(row["pack"])[row["pack_index"]], dtype=np.float32)

    def summary(self) -> dict:
        return json.loads((self.root / "summary.json").read_text())

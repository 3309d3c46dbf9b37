"""Packs: the windows of every recording of one shape, contiguous in one memory-mapped file.

Recordings are prepared one shard each (so a run can stop and resume anywhere); when a run
ends, the shards are packed by window shape so that a shuffled batch is one fancy index into
one file instead of dozens of small reads. Packing writes new files under fresh names, the
manifest then points at them, and only then are the old packs and the shards removed: a
store is valid at every instant.

Only packs brainfm listed are ever deleted: those of the previous index, and those named in
``packs.pending.json`` before they were written (so a pack of a run killed before its index
was written is found again); a ``pack-*.npy`` nothing lists, someone else's, is left alone.
"""
from __future__ import annotations

import json
import os
import uuid
from collections import defaultdict
from pathlib import Path

import numpy as np

from .store import PENDING, atomic_write_json, pending_packs, store_path

PACK_INDEX = "packs.json"


def read_pack_index(root: Path) -> dict[str, list]:
    """key -> [pack file (relative to the store), first row in that pack, window count]."""
    path = root / PACK_INDEX
    return json.loads(path.read_text()) if path.exists() else {}


def has_windows(root: Path, key: str, index: dict) -> bool:
    """Whether a recording's windows are on disk, as a shard or inside a current pack."""
    if (root / "shards" / f"{key}.npy").exists():
        return True
    where = index.get(key)
    return bool(where) and store_path(root, where[0]).exists()


def _source(root: Path, key: str, index: dict) -> np.ndarray:
    shard = root / "shards" / f"{key}.npy"
    if shard.exists():
        return np.load(shard, mmap_mode="r", allow_pickle=False)
    pack, offset, n = index[key]
    return np.load(store_path(root, pack), mmap_mode="r", allow_pickle=False)[offset:offset + n]


def pack_records(root: Path, records: list[dict], dtype: str) -> dict[str, list]:
    """Write one pack per window shape from the ok ``records``; returns the new index.

    Reads each recording from its shard, or from the pack it was in after an earlier run.
    """
    old = read_pack_index(root)
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        if r["status"] == "ok":
            groups[tuple(r["shape"][1:])].append(r)
    (root / "packs").mkdir(exist_ok=True)
    names = {shape: f"packs/pack-{shape[0]}x{shape[1]}-{uuid.uuid4().hex[:8]}.npy"
             for shape in groups}
    # announced before they exist: the new packs, and the old ones they replace
    atomic_write_json(root / PENDING, sorted({*pending_packs(root), *names.values(),
                                              *(v[0] for v in old.values() if v)}))
    index: dict[str, list] = {}
    for (c, t), members in sorted(groups.items()):
        total = sum(r["n_windows"] for r in members)
        name = names[(c, t)]
        tmp = store_path(root, f"{name}.partial")
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=(total, c, t))
        row = 0
        for r in members:
            src = _source(root, r["key"], old)
            if src.shape != (r["n_windows"], c, t):
                raise RuntimeError(f"{root}: windows of {r['relpath']} have shape {src.shape},"
                                   f" its record says {(r['n_windows'], c, t)}; re-run with "
                                   "overwrite=true")
            out[row:row + len(src)] = src
            index[r["key"]] = [name, row, len(src)]
            row += len(src)
        out.flush()
        del out
        os.replace(tmp, store_path(root, name))
    return index


def index_is_current(root: Path, index: dict, ok_keys) -> bool:
    """Whether ``index`` holds exactly the ok recordings, in packs that exist (else the
    store must be packed again: recordings were added or retried, or a run was killed
    while packing)."""
    return (set(index) == set(ok_keys)
            and all(store_path(root, where[0]).is_file() for where in index.values()))


def write_pack_index(root: Path, index: dict[str, list]) -> None:
    atomic_write_json(root / PACK_INDEX, index)


def remove_unreferenced(root: Path, index: dict[str, list], previous: dict[str, list]
                        ) -> None:
    """Delete the packs brainfm listed (in the ``previous`` index, or as pending) that
    ``index`` no longer lists, and the shards whose windows it holds; then the pending list.
    Nothing that no list of this store names is touched."""
    live = {v[0] for v in index.values()}
    listed = {v[0] for v in previous.values() if v} | set(pending_packs(root))
    for name in sorted(listed - live):
        store_path(root, name).unlink(missing_ok=True)
    for key in index:
        (root / "shards" / f"{key}.npy").unlink(missing_ok=True)
    (root / PENDING).unlink(missing_ok=True)

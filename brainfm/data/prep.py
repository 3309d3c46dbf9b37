"""Batch preparation: a dataset spec -> a corpus store, recording by recording.

A failing recording is recorded with its reason and the run goes on; a re-run skips the
recordings already done with the same settings and retries the failed ones.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .._version import __version__
from ..errors import BrainfmError, raise_problems
from ..progress import progress_bar
from .checks import check_listing, dataset_problems
from .datasets import DatasetSpec, RecordingItem, list_recordings
from .packing import (has_windows, index_is_current, pack_records, pending_packs,
                      read_pack_index, remove_unreferenced, write_pack_index)
from .readers import read_recording
from .sensors import sensor_features
from .standardise import StandardiseConfig, standardise
from .store import (MANIFEST_FILES, STORE_FORMAT, StoreError, atomic_save_array,
                    atomic_write_json, atomic_write_parquet, check_store_folders,
                    claim_store_folder, remove_stale_temporaries, store_lock, store_path,
                    to_json)
from .windows import event_windows, fixed_windows
from .workers import die_with_parent

_FLOAT16_MAX = float(np.finfo(np.float16).max)


@dataclass
class PrepSummary:
    dataset: str
    store: str
    done: int = 0
    skipped: int = 0
    failed: int = 0
    failures: dict = field(default_factory=dict)    # relpath -> reason
    hours: float = 0.0
    windows: int = 0
    rejected: int = 0
    windows_per_class: dict = field(default_factory=dict)
    windows_per_subject: dict = field(default_factory=dict)
    subjects: int = 0
    seconds: float = 0.0

    def as_text(self) -> str:
        lines = [
            f"brainfm-prep {self.dataset} -> {self.store}",
            f"  recordings: {self.done} done, {self.skipped} already done (skipped), "
            f"{self.failed} failed",
            f"  {self.hours:.2f} h of signal, {self.windows} windows "
            f"({self.rejected} rejected), {self.subjects} subjects, {self.seconds:.1f} s",
        ]
        if self.windows_per_class:
            lines.append("  windows per class: " + ", ".join(
                f"{k}={v}" for k, v in self.windows_per_class.items()))
        if self.windows_per_subject:
            per = ", ".join(f"{k}={v}" for k, v in list(self.windows_per_subject.items())[:40])
            more = len(self.windows_per_subject) - 40
            lines.append("  windows per subject: " + per + (f", ... {more} more" if more > 0
                                                           else ""))
        for rel, why in self.failures.items():
            lines.append(f"  FAILED {rel}: {why}")
        return "\n".join(lines)


def config_hash(spec: DatasetSpec, std: StandardiseConfig, dtype: str) -> str:
    blob = json.dumps({"format": STORE_FORMAT, "dataset": spec.recipe(),
                       "standardise": std.as_dict(), "dtype": dtype},
                      sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def _windows_for(item: RecordingItem, spec: DatasetSpec, rec):
    w = spec.windows
    if w.kind == "events":
        return event_windows(rec, spec.labels.map, spec.labels.classes, w.tmin, w.tmax,
                             w.reject_max_abs)
    label = -1
    if spec.labels.source == "path":
        if item.path_label not in spec.labels.map:
            raise BrainfmError(f"{item.relpath}: path label {item.path_label!r} is not in "
                               f"dataset.labels.map {sorted(spec.labels.map)} -> add it or "
                               "exclude the file")
        label = spec.labels.classes.index(spec.labels.map[item.path_label])
    return fixed_windows(rec, w.length_s, w.stride_s, label=label,
                         reject_max_abs=w.reject_max_abs)


def prepare_one(item: RecordingItem, spec: DatasetSpec, std: StandardiseConfig, root: Path,
                dtype: str, chash: str) -> dict:
    """Read, standardise, window and write one recording; returns its record (never raises
    for a bad recording: the failure is the record)."""
    base = {"key": item.key, "relpath": item.relpath, "subject": item.subject,
            "session": item.session, "run": item.run, "config_hash": chash}
    try:
        rec = read_recording(item.path, member=item.member, subject=item.subject,
                             session=item.session, run=item.run, **spec.read)
        orig_sfreq, orig_channels = rec.sfreq, rec.n_channels
        rec = standardise(rec, std)
        ws = _windows_for(item, spec, rec)
        if len(ws) == 0:
            raise BrainfmError(f"{rec.source}: no window left ({ws.n_rejected} rejected at "
                               f"max |x| >= {spec.windows.reject_max_abs}) -> raise "
                               "dataset.windows.reject_max_abs or check the recording")
        data = ws.data
        if dtype == "float16":
            peak = float(np.abs(data).max())
            if peak >= _FLOAT16_MAX:
                raise BrainfmError(f"{rec.source}: peak {peak:.3g} overflows float16 -> "
                                   "use dtype=float32 or a larger standardise.scale")
        atomic_save_array(root / "shards" / f"{item.key}.npy", data.astype(dtype))
        sensors = sensor_features(rec.ch_types, rec.positions, rec.orientations)
        record = {
            **base, "status": "ok", "error": None, "source": rec.source,
            "n_windows": len(ws), "n_rejected": ws.n_rejected, "shape": list(data.shape),
            "onset_s": ws.onset, "label": ws.label,
            "max_abs": np.abs(data).reshape(len(data), -1).max(axis=1),
            "sfreq": rec.sfreq, "orig_sfreq": orig_sfreq, "orig_channels": orig_channels,
            "duration_s": rec.duration, "ch_names": rec.ch_names, "ch_types": rec.ch_types,
            "units": rec.units, "bads": rec.bads, "sensors": sensors,
            "missing_positions": rec.missing_positions, "provenance": rec.provenance,
        }
    except Exception as err:  # a batch job records the failure and goes on
        record = {**base, "status": "failed", "error": f"{type(err).__name__}: {err}"}
    atomic_write_json(root / "records" / f"{item.key}.json", record)
    return record


def _load_record(root: Path, key: str) -> dict | None:
    path = root / "records" / f"{key}.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None


def _check_store(root: Path, spec, std, dtype, chash, overwrite: bool, keys) -> None:
    meta_path = root / "store.json"
    if meta_path.exists() and not overwrite:
        meta = json.loads(meta_path.read_text())
        if meta.get("config_hash") != chash:
            raise StoreError(f"{root} was prepared with other settings (hash "
                             f"{meta.get('config_hash')} != {chash}); choose another store "
                             "folder or pass overwrite=true")
    if overwrite and root.exists():
        _discard_store_contents(root, keys)
    atomic_write_json(meta_path, {
        "format": STORE_FORMAT, "brainfm_version": __version__, "config_hash": chash,
        "dataset": asdict(spec), "standardise": std.as_dict(), "dtype": dtype,
        "sfreq": std.sfreq})


def _discard_store_contents(root: Path, keys) -> None:
    """overwrite=true: delete what this store's manifest lists (its recordings' records and
    shards, its packs, the manifest files) and the records and shards of the recordings
    about to be prepared (``keys``), nothing found by a name pattern: a file the user put
    in the store stays. Called only on a claimed store, under its lock."""
    import pandas as pd

    keys = set(keys)
    if (root / "recordings.parquet").exists():
        keys |= set(pd.read_parquet(root / "recordings.parquet", columns=["key"])["key"])
    doomed = [root / name for name in MANIFEST_FILES if name != "store.json"]
    for key in sorted(map(str, keys)):
        if (_load_record(root, key) or {}).get("key") == key:
            doomed += [store_path(root, f"records/{key}.json"),
                       store_path(root, f"shards/{key}.npy")]
    packs = {v[0] for v in read_pack_index(root).values() if v} | set(pending_packs(root))
    if (root / "windows.parquet").exists():
        packs |= set(pd.read_parquet(root / "windows.parquet", columns=["pack"])["pack"])
    doomed += [store_path(root, str(name)) for name in sorted(packs)]
    for path in doomed:
        if path.is_file():
            path.unlink()


def write_manifest(root: Path, spec: DatasetSpec, records: list[dict],
                   packs: dict[str, list]) -> None:
    """The recording and window tables, from the records and where their windows live."""
    import pandas as pd

    rec_rows, win_frames = [], []
    classes = spec.labels.classes
    for r in records:
        row = {k: r.get(k) for k in ("key", "relpath", "status", "error", "subject",
                                     "session", "run", "source", "n_windows", "n_rejected",
                                     "sfreq", "orig_sfreq", "orig_channels", "duration_s")}
        for k in ("ch_names", "ch_types", "units", "bads", "sensors", "missing_positions",
                  "provenance"):
            row[k] = to_json(r.get(k)) if r.get(k) is not None else None
        rec_rows.append(row)
        if r["status"] != "ok":
            continue
        n = r["n_windows"]
        labels = np.asarray(r["label"], dtype=np.int64)
        pack, offset, _ = packs[r["key"]]
        win_frames.append(pd.DataFrame({
            "dataset": spec.name, "key": r["key"], "index": np.arange(n, dtype=np.int64),
            "pack": pack, "pack_index": offset + np.arange(n, dtype=np.int64),
            "subject": r["subject"], "session": r["session"], "run": r["run"],
            "recording": r["relpath"], "onset_s": np.asarray(r["onset_s"], dtype=float),
            "label": labels, "max_abs": np.asarray(r["max_abs"], dtype=np.float32),
            "label_name": [classes[i] if 0 <= i < len(classes) else None for i in labels],
            "n_channels": r["shape"][1], "n_samples": r["shape"][2]}))
    windows = (pd.concat(win_frames, ignore_index=True) if win_frames else
               pd.DataFrame(columns=["dataset", "key", "index", "pack", "pack_index", "subject", "session", "run",
                                     "recording", "onset_s", "label", "label_name", "max_abs",
                                     "n_channels", "n_samples"]))
    atomic_write_parquet(root / "recordings.parquet", pd.DataFrame(rec_rows))
    atomic_write_parquet(root / "windows.parquet", windows)


def prepare(spec: DatasetSpec, std: StandardiseConfig, data_root: Path, store_dir: Path,
            dtype: str = "float16", overwrite: bool = False, n_jobs: int = 1,
            limit: int | None = None, progress: bool = True) -> PrepSummary:
    """Prepare every recording of ``spec`` into the store at ``store_dir``.

    ``n_jobs`` processes prepare recordings in parallel (< 1: one per available core); each
    writes its own shard and record, so the parent only assembles the manifest.
    """
    if dtype not in ("float16", "float32"):
        raise ValueError(f"dtype={dtype!r}; use float16 or float32")
    if n_jobs is None or n_jobs < 1:  # all the cores this process may use
        n_jobs = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
            os.cpu_count() or 1)
    t0 = time.perf_counter()
    root = Path(store_dir)
    raise_problems(f"dataset {spec.name}", dataset_problems(spec))
    base = Path(data_root) / spec.path
    claim_store_folder(root, data_roots=[data_root, base.parent if base.is_file() else base])
    items = list_recordings(spec, Path(data_root))
    check_listing(spec, items, base)
    if limit:
        items = items[:limit]
    root.mkdir(parents=True, exist_ok=True)
    with store_lock(root):
        claim_store_folder(root)  # another writer may have made it meanwhile: still ours?
        check_store_folders(root)
        remove_stale_temporaries(root)
        chash = config_hash(spec, std, dtype)
        _check_store(root, spec, std, dtype, chash, overwrite, [it.key for it in items])
        summary = PrepSummary(dataset=spec.name, store=str(root))
        todo, records = _todo(root, items, chash, summary)
        _prepare_all(todo, records, spec, std, root, dtype, chash, n_jobs, progress)
        ordered = [records[it.key] for it in items]
        _commit(root, spec, ordered, dtype)
        _summarise(summary, ordered, todo, records, spec, t0)
        atomic_write_json(root / "summary.json", asdict(summary))
    return summary


def _todo(root: Path, items, chash: str, summary: PrepSummary):
    """(recordings still to prepare, records of those already done with these settings)."""
    records: dict[str, dict] = {}
    todo = []
    packed = read_pack_index(root)
    for it in items:
        rec = _load_record(root, it.key)
        if (rec and rec.get("status") == "ok" and rec.get("config_hash") == chash
                and has_windows(root, it.key, packed)):
            records[it.key] = rec
            summary.skipped += 1
        else:
            todo.append(it)
    return todo, records


def _prepare_all(todo, records, spec, std, root, dtype, chash, n_jobs, progress) -> None:
    bar = progress_bar(len(todo), f"prep {spec.name}", progress, unit="rec")
    if n_jobs > 1 and len(todo) > 1:
        _warm_caches(spec)  # forked workers inherit the parent's template tables
        with ProcessPoolExecutor(max_workers=n_jobs, initializer=die_with_parent,
                                 initargs=(os.getpid(),)) as pool:
            futures = [pool.submit(prepare_one, it, spec, std, root, dtype, chash)
                       for it in todo]
            for fut in futures:
                rec = fut.result()
                records[rec["key"]] = rec
                bar.update(1)
    else:
        for it in todo:
            rec = prepare_one(it, spec, std, root, dtype, chash)
            records[rec["key"]] = rec
            bar.update(1)
    bar.close()


def _commit(root: Path, spec: DatasetSpec, ordered: list[dict], dtype: str) -> None:
    """Packs, then the pack index, then the manifest, then removal of what nothing points at:
    a kill between any two steps leaves a valid store that a re-run finishes identically
    (the packs are rebuilt whenever the index does not hold exactly the ok recordings)."""
    packed = read_pack_index(root)
    ok = [r["key"] for r in ordered if r["status"] == "ok"]
    packs = packed if index_is_current(root, packed, ok) else pack_records(root, ordered, dtype)
    write_pack_index(root, packs)
    write_manifest(root, spec, ordered, packs)
    remove_unreferenced(root, packs, previous=packed)


def _summarise(summary: PrepSummary, ordered, todo, records, spec, t0) -> None:
    per_class: Counter = Counter()
    per_subject: Counter = Counter()
    for r in ordered:
        if r["status"] != "ok":
            summary.failed += 1
            summary.failures[r["relpath"]] = r["error"]
            continue
        summary.hours += r["duration_s"] / 3600.0
        summary.windows += r["n_windows"]
        summary.rejected += r["n_rejected"]
        for lab in r["label"]:
            name = spec.labels.classes[lab] if lab >= 0 else "unlabelled"
            per_class[name] += 1
        per_subject[r["subject"] or "n/a"] += r["n_windows"]
    summary.done = len(todo) - sum(1 for it in todo if records[it.key]["status"] != "ok")
    summary.windows_per_class = dict(sorted(per_class.items()))
    summary.windows_per_subject = dict(sorted(per_subject.items()))
    summary.subjects = len([s for s in per_subject if s != "n/a"])
    summary.seconds = time.perf_counter() - t0


def _warm_caches(spec: DatasetSpec) -> None:
    from .channels import _template_names
    from .sensors import DEFAULT_TEMPLATE, template_positions

    montage = spec.read.get("montage", DEFAULT_TEMPLATE)
    if montage:
        template_positions(montage)
        _template_names()

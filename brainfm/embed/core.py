"""Embeddings of anything brainfm reads: a recording file, a folder of them, or a prepared
dataset store, from a checkpoint.

Files are read and brought to the checkpoint's contract (``model.prepare``) one by one; a
store's windows are already standardised, so they are used as they are, after checking
that the store was standardised the way the checkpoint expects. Per window: the backbone's
features averaged over channels and patches; per recording: the mean of its windows.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .._version import __version__
from ..checkpoint import from_pretrained
from ..data.contract import (check_store_contract, fixed_channel_set, recording_sensors,
                             split_channel_set, windows_of)
# a folder input embeds every file in it with one of RECORDING_SUFFIXES
from ..data.readers import RECORDING_SUFFIXES, read_recording
from ..data.store import (CorpusStore, atomic_save_array, atomic_write_json,
                          atomic_write_parquet, is_store)
from ..errors import BrainfmError
from ..outputs import claim_output_folder, output_folder
from ..progress import progress_bar

COMMAND = "brainfm-embed"
#: What brainfm-embed writes into its output folder (besides its marker).
OUTPUT_FILES = ("windows.parquet", "windows.npy", "recordings.parquet", "recordings.npy",
                "embed.json")

@dataclass
class EmbeddingResult:
    """``table``: one row per window (``id`` is its row in ``windows``); ``recordings``: one
    row per recording (``id`` is its row in ``recording_embeddings``)."""

    table: "object"
    windows: np.ndarray
    recordings: "object"
    recording_embeddings: np.ndarray
    failures: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)


def pick_device(device: str = "auto") -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _recording_files(folder: Path) -> list[Path]:
    files = []
    for path in sorted(folder.rglob("*")):
        name = path.name.lower()
        if name.startswith(".") or name.endswith(("-eve.fif", "_eve.fif")):
            continue
        if (path.is_file() or name.endswith((".ds", ".mff"))) and name.endswith(
                RECORDING_SUFFIXES):
            files.append(path)
    return files


def resolve_input(source, store_root=None) -> tuple[str, object]:
    """("store", Path) | ("files", [Path, ...]) for a file, folder, store or dataset name."""
    if source is None or not str(source).strip():
        raise BrainfmError("input= is empty: name a recording file, a folder of recordings, a "
                           "store folder or a prepared dataset (an empty path would embed "
                           "everything under the working folder)")
    path = Path(str(source)).expanduser()
    if path.is_dir() and is_store(path):
        return "store", path
    if path.is_dir() and not path.name.lower().endswith((".ds", ".mff")):
        files = _recording_files(path)
        if not files:
            raise BrainfmError(f"input={source}: a folder with no recordings brainfm reads "
                               f"(looked for {', '.join(RECORDING_SUFFIXES)})")
        return "files", files
    if path.exists():
        return "files", [path]
    root = Path(store_root or os.environ.get("BRAINFM_STORE_ROOT", "stores"))
    store = root / str(source)
    if is_store(store):
        return "store", store
    raise BrainfmError(f"input={source}: no such file or folder, and no prepared store "
                       f"{store} -> prepare the dataset first (brainfm-prep dataset={source} "
                       f"store_root={root}), or pass a recording file or folder")


def _store_rows(store, model, batch_size, progress, failures):
    """Window rows and embeddings of every ok recording of a store (the window table is
    split by recording once, not filtered again per recording)."""
    channels = fixed_channel_set(model.data_contract())
    patch = int(model.patch_len)
    ok = store.recordings[store.recordings["status"] == "ok"]
    by_key = dict(tuple(store.windows.groupby("key", sort=False)))
    rows, vecs = [], []
    bar = progress_bar(len(store.windows), f"brainfm embed {store.name}", enabled=progress,
                       unit="window")
    for rec in ok.itertuples():
        meta = by_key.get(rec.key)
        if meta is None:
            raise BrainfmError(f"{store.root}: recording {rec.relpath} (key {rec.key}) is "
                               "listed ok but has no windows -> prepare the store again")
        first = int(meta["pack_index"].iloc[0])   # a recording's windows are one run of its pack
        x = np.asarray(store.array(meta["pack"].iloc[0])[first:first + len(meta)],
                       dtype=np.float32)
        sensors = store.sensors(rec.key)
        names = json.loads(rec.ch_names)
        if channels:
            lack = split_channel_set(names, channels)[1]
            if lack:
                failures[str(rec.relpath)] = f"lacks channel(s) {', '.join(lack)}"
                bar.update(len(meta))
                continue
            idx = [names.index(n) for n in channels]
            x, sensors = x[:, idx], sensors[idx]
        x = x[..., :x.shape[-1] // patch * patch]
        emb = model.embed_windows(torch.from_numpy(x), torch.from_numpy(sensors), None,
                                  batch_size, progress=False)
        vecs.append(emb)
        peak = np.abs(x).max(axis=(1, 2))
        end = x.shape[-1] / store.sfreq
        for j, w in enumerate(meta.itertuples()):
            rows.append({"recording": str(rec.relpath), "dataset": store.name,
                         "subject": rec.subject, "session": rec.session, "run": rec.run,
                         "start_s": float(w.onset_s), "end_s": float(w.onset_s) + end,
                         "label": int(w.label), "label_name": w.label_name,
                         "annotations": None, "max_abs": float(peak[j])})
        bar.update(len(meta))
    bar.close()
    return rows, vecs


def _annotation_text(rec, start: float, end: float) -> str | None:
    ann = rec.annotations
    if not len(ann):
        return None
    hit = (ann.onset < end) & (ann.onset + ann.duration >= start)
    return ";".join(dict.fromkeys(ann.description[hit].astype(str))) or None


def _file_rows(files, model, batch_size, progress, failures, allow_interpolation, window_s):
    """Window rows and embeddings of recording files, each read and prepared once (the
    prepared recording is windowed here, not handed to ``model.embed`` to prepare again)."""
    rows, vecs = [], []
    size = model.window_length(window_s)
    patch = int(model.patch_len)
    bar = progress_bar(len(files), "brainfm embed", enabled=progress and len(files) > 1,
                       unit="file")
    for path in files:
        try:
            rec = model.prepare(read_recording(path), allow_interpolation)
            x, starts, n = windows_of(rec, size, patch)
        except BrainfmError as err:
            failures[str(path)] = str(err)
            bar.update()
            continue
        vecs.append(model.embed_windows(torch.from_numpy(x), recording_sensors(rec), None,
                                        batch_size, progress=progress and len(files) == 1))
        peak = np.abs(x).max(axis=(1, 2))
        for s, m in zip(starts, peak):
            e = float(s) + n / rec.sfreq
            rows.append({"recording": str(path), "dataset": None, "subject": rec.subject,
                         "session": rec.session, "run": rec.run, "start_s": float(s),
                         "end_s": e, "label": -1, "label_name": None,
                         "annotations": _annotation_text(rec, float(s), e),
                         "max_abs": float(m)})
        bar.update()
    bar.close()
    return rows, vecs


def embed_dataset(checkpoint, input, out=None, batch_size: int = 64, device: str = "auto",
                  progress: bool = True, store_root=None, allow_interpolation: bool = False,
                  window_s: float | None = None, overwrite: bool = False) -> EmbeddingResult:
    """Per-window and per-recording embeddings of ``input`` (a recording file, a folder of
    them, a store folder, or a dataset name with a prepared store under ``store_root``)
    from ``checkpoint`` (a path brainfm.from_pretrained loads, or a loaded model); written
    to ``out`` when given (see :func:`write_result`; the folder is checked before any
    work)."""
    import pandas as pd

    t0 = time.time()
    if out is not None:
        claim_output_folder(out, COMMAND, overwrite, legacy=embed_output_files)
    resolve_input(input, store_root)  # a wrong input is named before the model loads
    model = checkpoint if hasattr(checkpoint, "embed") else from_pretrained(checkpoint)
    dev = pick_device(device)
    model = model.to(dev).eval()
    kind, what = resolve_input(input, store_root)
    failures: dict = {}
    if kind == "store":
        store = CorpusStore(what)
        check_store_contract(store, model.data_contract())
        rows, vecs = _store_rows(store, model, batch_size, progress, failures)
    else:
        rows, vecs = _file_rows(what, model, batch_size, progress, failures,
                                allow_interpolation, window_s)
    if not rows:
        raise BrainfmError(f"input={input}: nothing embedded ({len(failures)} failed: "
                           + "; ".join(f"{k}: {v}" for k, v in list(failures.items())[:3])
                           + ")")
    table = pd.DataFrame(rows)
    table.insert(0, "id", np.arange(len(table)))
    windows = np.concatenate(vecs).astype(np.float32)
    groups = table.groupby("recording", sort=False)
    recs = groups.agg(dataset=("dataset", "first"), subject=("subject", "first"),
                      session=("session", "first"), run=("run", "first"),
                      n_windows=("id", "size"), first_id=("id", "min"),
                      label=("label", lambda s: int(s.iloc[0]) if s.nunique() == 1 else -1)
                      ).reset_index()
    recs.insert(0, "id", np.arange(len(recs)))
    rec_emb = np.stack([windows[idx].mean(axis=0) for idx in groups.indices.values()]
                       ).astype(np.float32)
    info = {"checkpoint": str(getattr(model, "source", checkpoint)), "input": str(input),
            "input_kind": kind, "device": dev, "dim": int(windows.shape[1]),
            "n_windows": len(table), "n_recordings": len(recs), "failed": len(failures),
            "seconds": round(time.time() - t0, 2)}
    result = EmbeddingResult(table, windows, recs, rec_emb, failures, info)
    if out is not None:
        write_result(result, out, overwrite)
    return result


def embed_output_files(folder) -> set[str] | None:
    """The files of an output brainfm-embed wrote before it left a marker (recognised by
    its embed.json), else None."""
    try:
        info = json.loads((Path(folder) / "embed.json").read_text())
    except (OSError, ValueError):
        return None
    if not (isinstance(info, dict) and "input_kind" in info and "n_windows" in info):
        return None
    return {name for name in OUTPUT_FILES if (Path(folder) / name).is_file()}


def write_result(result: EmbeddingResult, out, overwrite: bool = False) -> Path:
    """``out/``: windows.parquet + windows.npy (row ``id`` of the table = row of the array),
    recordings.parquet + recordings.npy, embed.json (what was embedded, failures).

    ``out`` must be new, empty or an earlier brainfm-embed output (``overwrite``: one
    holding other files too, which are kept); the five files are replaced together, never
    one by one (:mod:`brainfm.outputs`)."""
    with output_folder(out, COMMAND, overwrite, legacy=embed_output_files) as tmp:
        atomic_write_parquet(tmp / "windows.parquet", result.table)
        atomic_save_array(tmp / "windows.npy", result.windows)
        atomic_write_parquet(tmp / "recordings.parquet", result.recordings)
        atomic_save_array(tmp / "recordings.npy", result.recording_embeddings)
        atomic_write_json(tmp / "embed.json", {**result.info, "failures": result.failures,
                                               "brainfm_version": __version__})
    return Path(out)


__all__ = ["EmbeddingResult", "OUTPUT_FILES", "RECORDING_SUFFIXES", "embed_dataset",
           "embed_output_files", "pick_device", "resolve_input", "write_result"]

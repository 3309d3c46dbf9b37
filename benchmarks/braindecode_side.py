"""Braindecode side of the data-preparation benchmark.

Runs the benchmark's preprocessing + windowing pipelines on the real recordings
with braindecode only (no brainfm imports), so braindecode can serve as a
comparison baseline. Each measurement is meant to run in its own
process; the CLI prints exactly one JSON line per dataset on stdout:

    python benchmarks/braindecode_side.py --task prep --dataset eegmat
    python benchmarks/braindecode_side.py --task load --dataset ssvep --workers 2

Install the environment with ``benchmarks/requirements-braindecode.txt``.
Works with braindecode 0.8.1 (the pinned, torchaudio-free release) and 1.x.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import inspect
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import mne
import numpy as np
import pandas as pd
import torch
from braindecode.datasets import BaseConcatDataset
from braindecode.preprocessing import (
    Preprocessor,
    create_fixed_length_windows,
    create_windows_from_events,
    preprocess,
)
from torch.utils.data import DataLoader

try:  # braindecode >= 1.0 renamed BaseDataset (kept as a deprecated alias)
    from braindecode.datasets import RawDataset
except ImportError:  # braindecode 0.8
    from braindecode.datasets import BaseDataset as RawDataset

DEFAULT_DATA_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data"

L_FREQ, H_FREQ = 0.3, 75.0  # band-pass (Hz)
NOTCH_HZ = 50.0
SFREQ = 200.0  # target sampling rate (Hz)
SCALE = 1e4  # volts -> units of 100 uV
WINDOW_S = 5.0
WINDOW_SAMPLES = int(WINDOW_S * SFREQ)

EEGMAT_NON_SCALP = ("EEG A2-A1", "ECG ECG")  # typed "eeg" in the EDF; drop by name
EEGMAT_TASKS = {1: ("rest", 0), 2: ("arithmetic", 1)}  # file suffix -> (task, label)
SSVEP_EVENTS = {1: "rest", 2: "13Hz", 3: "21Hz", 4: "17Hz"}  # -eve.fif ids
SSVEP_MAPPING = {"rest": 0, "13Hz": 1, "21Hz": 2, "17Hz": 3}  # window targets


def _mne(method, **kwargs):
    """Preprocessor calling an MNE Raw method by name."""
    return Preprocessor(method, apply_on_array=False, **kwargs)


def _last_window(windower, drop):
    """Last-window kwarg: 1.x deprecates ``drop_last_window`` for ``on_last_window``."""
    if "on_last_window" in inspect.signature(windower).parameters:
        return {"on_last_window": "drop" if drop else "overlap"}
    return {"drop_last_window": drop}


def _pick_scalp_eeg(raw):
    """Keep the 19 scalp channels ("EEG Fp1", ...); drop reference and ECG."""
    keep = [ch for ch in raw.ch_names if ch.startswith("EEG ") and ch not in EEGMAT_NON_SCALP]
    raw.pick(keep)


def _scale(data, factor):
    """Multiply an array by a constant (used through ``Raw.apply_function``)."""
    return data * factor


def preprocessors(pick=None):
    """The shared pipeline: [pick], load, band-pass, notch, resample, scale."""
    steps = [] if pick is None else [pick]
    steps += [
        _mne("load_data", verbose="error"),  # after the pick: read only what is kept
        _mne("filter", l_freq=L_FREQ, h_freq=H_FREQ, verbose="error"),
        _mne("notch_filter", freqs=[NOTCH_HZ], verbose="error"),
        _mne("resample", sfreq=SFREQ, verbose="error"),
        Preprocessor(_scale, factor=SCALE),
    ]
    return steps


def load_eegmat(data_root):
    """Raw eegmat recordings as a BaseConcatDataset (label 0 = rest, 1 = arithmetic)."""
    files = sorted(Path(data_root, "eegmat").glob("Subject*_[12].edf"))
    if not files:
        raise FileNotFoundError(f"no eegmat EDF files under {data_root}")
    datasets = []
    for path in files:
        subject, session = path.stem.removeprefix("Subject").split("_")
        task, label = EEGMAT_TASKS[int(session)]
        raw = mne.io.read_raw_edf(path, preload=False, verbose="error")
        description = pd.Series(
            {
                "subject": int(subject),
                "session": int(session),
                "task": task,
                "label": label,
                "file": path.name,
            }
        )
        datasets.append(RawDataset(raw, description, target_name="label"))
    return BaseConcatDataset(datasets)


def load_ssvep(data_root):
    """Raw ssvep_exoskeleton sessions with annotations built from the -eve.fif files."""
    files = sorted(Path(data_root, "ssvep_exoskeleton").glob("subject*/*_raw.fif"))
    if not files:
        raise FileNotFoundError(f"no ssvep_exoskeleton FIF files under {data_root}")
    datasets, session_count = [], {}
    for path in files:
        subject = int(path.parent.name.removeprefix("subject"))
        session_count[subject] = session_count.get(subject, 0) + 1
        raw = mne.io.read_raw_fif(path, preload=False, verbose="error")
        events = mne.read_events(str(path).replace("_raw.fif", "-eve.fif"), verbose="error")
        annotations = mne.annotations_from_events(
            events,
            raw.info["sfreq"],
            event_desc=SSVEP_EVENTS,
            first_samp=raw.first_samp,
            verbose="error",
        )
        annotations.duration[:] = WINDOW_S  # each trial is 5 s of flicker (or rest)
        raw.set_annotations(annotations, verbose="error")
        description = pd.Series(
            {"subject": subject, "session": session_count[subject], "file": path.name}
        )
        datasets.append(RawDataset(raw, description))
    return BaseConcatDataset(datasets)


def _recording_seconds(concat_ds):
    return float(sum(ds.raw.n_times / ds.raw.info["sfreq"] for ds in concat_ds.datasets))


def _prep(load, steps, windower, data_root, n_jobs, timings):
    """load -> preprocess -> window, timing each stage into ``timings``."""
    with mne.utils.use_log_level("error"):
        t0 = time.perf_counter()
        concat_ds = load(data_root)
        t1 = time.perf_counter()
        preprocess(concat_ds, steps, n_jobs=n_jobs)
        t2 = time.perf_counter()
        windows = windower(concat_ds, n_jobs=n_jobs)
        t3 = time.perf_counter()
    if timings is not None:
        timings.update(
            read_s=t1 - t0,
            preprocess_s=t2 - t1,
            window_s=t3 - t2,
            recording_s=_recording_seconds(concat_ds),
        )
    return windows


def prep_eegmat(data_root=DEFAULT_DATA_ROOT, n_jobs=1, timings=None):
    """eegmat -> preprocessed 5 s non-overlapping fixed-length windows.

    ``timings``, if a dict, is filled with read/preprocess/window seconds and
    the recorded duration (``recording_s``).
    """

    def windower(concat_ds, n_jobs):
        return create_fixed_length_windows(
            concat_ds,
            start_offset_samples=0,
            stop_offset_samples=None,
            window_size_samples=WINDOW_SAMPLES,
            window_stride_samples=WINDOW_SAMPLES,
            preload=False,
            n_jobs=n_jobs,
            **_last_window(create_fixed_length_windows, drop=True),
        )

    steps = preprocessors(Preprocessor(_pick_scalp_eeg, apply_on_array=False))
    return _prep(load_eegmat, steps, windower, data_root, n_jobs, timings)


def prep_ssvep(data_root=DEFAULT_DATA_ROOT, n_jobs=1, timings=None):
    """ssvep_exoskeleton -> preprocessed windows, one 5 s window per trial.

    Window targets: rest 0, 13 Hz 1, 21 Hz 2, 17 Hz 3. ``timings`` as in prep_eegmat.
    """

    def windower(concat_ds, n_jobs):
        return create_windows_from_events(
            concat_ds,
            trial_start_offset_samples=0,
            trial_stop_offset_samples=0,
            window_size_samples=WINDOW_SAMPLES,
            window_stride_samples=WINDOW_SAMPLES,
            mapping=dict(SSVEP_MAPPING),
            preload=False,
            n_jobs=n_jobs,
            **_last_window(create_windows_from_events, drop=False),
        )

    return _prep(load_ssvep, preprocessors(), windower, data_root, n_jobs, timings)


PREPS = {"eegmat": prep_eegmat, "ssvep": prep_ssvep}


def loader_throughput(
    windows_dataset, batch_size=64, num_workers=0, n_batches=None, shuffle=True, stats=None,
    epochs=1,
):
    """Iterate a DataLoader for one epoch (or ``n_batches``); return windows per second.

    Worker start-up is included in the timing, as it is in a real epoch. With ``epochs`` > 1
    the further epochs (persistent workers) give ``stats["steady_per_s"]``.
    """
    loader = DataLoader(
        windows_dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        generator=torch.Generator().manual_seed(0),
        persistent_workers=num_workers > 0,
    )
    n_windows, n_seen, first_batch_s, first_batch_n = 0, 0, None, 0
    t0 = time.perf_counter()
    for X, *_ in loader:
        n_windows += X.shape[0]
        n_seen += 1
        if first_batch_s is None:
            first_batch_s, first_batch_n = time.perf_counter() - t0, X.shape[0]
        if n_batches is not None and n_seen >= n_batches:
            break
    elapsed = time.perf_counter() - t0
    if stats is not None and epochs > 1:
        t1, n_more = time.perf_counter(), 0
        for _ in range(epochs - 1):
            for X, *_ in loader:
                n_more += X.shape[0]
        stats["steady_per_s"] = n_more / (time.perf_counter() - t1)
    if stats is not None:
        rest_s = elapsed - first_batch_s
        stats.update(
            windows=n_windows,
            batches=n_seen,
            seconds=elapsed,
            first_batch_s=first_batch_s,
            batch_shape=list(X.shape),
            dtype=str(X.dtype),
            after_first_per_s=(n_windows - first_batch_n) / rest_s if rest_s > 0 else None,
        )
    return n_windows / elapsed


def _maxrss_mib(who):
    return round(resource.getrusage(who).ru_maxrss / 1024, 1)  # KiB on Linux


def _peak_rss_mib(children_before):
    """Peak RSS of this process, and of the largest child reaped since ``children_before``.

    The child figure is None unless a child (e.g. a DataLoader worker) outgrew the
    baseline; forked children count pages they share with the parent. Pass the
    value of ``_maxrss_mib(RUSAGE_CHILDREN)`` taken before the measured work:
    imports fork short-lived helpers (``uname -p``) that inherit the parent's RSS.
    """
    children = _maxrss_mib(resource.RUSAGE_CHILDREN)
    return _maxrss_mib(resource.RUSAGE_SELF), (children if children > children_before else None)


def run(task, dataset, data_root, n_jobs=1, workers=0, batch_size=64, n_batches=None,
        epochs=1):
    """One measurement; returns the JSON-serialisable figures."""
    rss_before = _maxrss_mib(resource.RUSAGE_SELF)  # imports (torch, mne, braindecode)
    children_before = _maxrss_mib(resource.RUSAGE_CHILDREN)
    timings = {}
    t0 = time.perf_counter()
    windows = PREPS[dataset](data_root, n_jobs=n_jobs, timings=timings)
    prep_s = time.perf_counter() - t0
    X = windows[0][0]
    result = {
        "side": "braindecode",
        "braindecode": importlib.metadata.version("braindecode"),
        "mne": mne.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "task": task,
        "dataset": dataset,
        "n_jobs": n_jobs,
        "recordings": len(windows.datasets),
        "windows": len(windows),
        "window_shape": list(X.shape),
        "targets": {
            str(k): int(v)
            for k, v in zip(*np.unique(windows.get_metadata()["target"], return_counts=True))
        },
        "hours_recorded": round(timings["recording_s"] / 3600, 4),
        "hours_windowed": round(len(windows) * WINDOW_S / 3600, 4),
        "prep_wall_s": round(prep_s, 3),
        **{k: round(v, 3) for k, v in timings.items() if k != "recording_s"},
    }
    if task == "load":
        stats = {}
        rate = loader_throughput(
            windows, batch_size=batch_size, num_workers=workers, n_batches=n_batches, stats=stats,
            epochs=epochs,
        )
        result.update(
            workers=workers,
            batch_size=batch_size,
            load_windows=stats["windows"],
            load_s=round(stats["seconds"], 3),
            first_batch_s=round(stats["first_batch_s"], 3),
            batch_dtype=stats["dtype"],
            windows_per_s=round(rate, 1),
            steady_windows_per_s=(
                round(stats["steady_per_s"], 1) if "steady_per_s" in stats else None
            ),
            windows_per_s_after_first_batch=(
                None if stats["after_first_per_s"] is None else round(stats["after_first_per_s"], 1)
            ),
        )
    result["rss_after_imports_mib"] = rss_before
    result["peak_rss_mib"], result["peak_rss_children_mib"] = _peak_rss_mib(children_before)
    return result


@contextlib.contextmanager
def _stdout_to_stderr():
    """Send everything written to fd 1 (incl. joblib children) to stderr; yield real stdout."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with os.fdopen(os.dup(saved), "w") as real_stdout:
            yield real_stdout
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", choices=["prep", "load"], default="prep")
    parser.add_argument(
        "--dataset",
        choices=[*PREPS, "all"],
        default="all",
        help="'all' runs each dataset in turn in this process (peak RSS then covers both)",
    )
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    parser.add_argument("--n-jobs", type=int, default=1, help="joblib jobs for prep")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--n-batches",
        type=int,
        default=None,
        help="stop after this many batches (default: one full epoch)",
    )
    parser.add_argument("--epochs", type=int, default=1,
                        help="epochs to load; those after the first give the steady rate")
    args = parser.parse_args(argv)

    mne.set_log_level("ERROR")
    os.environ.setdefault("MNE_LOGGING_LEVEL", "ERROR")  # joblib workers (--n-jobs > 1)
    names = list(PREPS) if args.dataset == "all" else [args.dataset]
    with _stdout_to_stderr() as out:
        for name in names:
            result = run(
                args.task,
                name,
                args.data_root,
                n_jobs=args.n_jobs,
                workers=args.workers,
                batch_size=args.batch_size,
                n_batches=args.n_batches,
                epochs=args.epochs,
            )
            print(json.dumps(result), file=out, flush=True)


if __name__ == "__main__":
    main()

"""Cutting standardised recordings into windows, and windows into patches.

Two kinds: fixed-length windows for pretraining (optionally with one label for the whole
recording, e.g. rest vs task files) and event-locked windows whose labels come from the
recording's annotations through a label map.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import RecordingError
from .recording import Recording


@dataclass
class WindowSet:
    """Windows of one recording: ``data`` is (n_windows, n_channels, n_samples) float32."""

    data: np.ndarray
    onset: np.ndarray                       # seconds from the recording start
    label: np.ndarray                       # int class index, -1 where unlabelled
    n_rejected: int = 0
    rejected_onsets: list = field(default_factory=list)

    def __len__(self) -> int:
        return self.data.shape[0]


def _n_samples(length_s: float, sfreq: float) -> int:
    n = int(round(length_s * sfreq))
    if n <= 0:
        raise ValueError(f"window length {length_s} s gives no samples at {sfreq} Hz")
    return n


def _reject(windows: np.ndarray, max_abs: float | None) -> np.ndarray:
    """Boolean keep-mask: a window is rejected when any sample reaches ``max_abs``."""
    if max_abs is None or len(windows) == 0:
        return np.ones(len(windows), dtype=bool)
    peak = np.abs(windows).reshape(len(windows), -1).max(axis=1)
    return peak < max_abs


def fixed_windows(rec: Recording, length_s: float, stride_s: float | None = None,
                  label: int = -1, reject_max_abs: float | None = None) -> WindowSet:
    """Consecutive windows of ``length_s`` seconds every ``stride_s`` (default: no overlap).

    The tail shorter than one window is dropped. ``reject_max_abs`` is in the recording's
    (standardised) units: CBraMod rejects at 100 uV, i.e. 1.0 in units of 100 uV.
    """
    size = _n_samples(length_s, rec.sfreq)
    step = _n_samples(stride_s if stride_s else length_s, rec.sfreq)
    if rec.n_times < size:
        raise RecordingError(rec.source, f"recording is {rec.duration:.2f} s long, shorter "
                             f"than one {length_s:g} s window",
                             "use shorter windows for this dataset or skip the recording")
    starts = np.arange(0, rec.n_times - size + 1, step)
    view = np.lib.stride_tricks.sliding_window_view(rec.data, size, axis=1)[:, starts]
    windows = np.ascontiguousarray(view.transpose(1, 0, 2))
    keep = _reject(windows, reject_max_abs)
    onsets = starts / rec.sfreq
    return WindowSet(data=windows[keep], onset=onsets[keep],
                     label=np.full(int(keep.sum()), label, dtype=np.int64),
                     n_rejected=int((~keep).sum()), rejected_onsets=onsets[~keep].tolist())


def event_windows(rec: Recording, label_map: dict, classes: list[str], tmin: float,
                  tmax: float, reject_max_abs: float | None = None) -> WindowSet:
    """One window per annotation whose description is a key of ``label_map``.

    ``label_map`` maps annotation descriptions (event codes are strings, e.g. ``"2"``) to
    class names in ``classes``; a window spans [onset + tmin, onset + tmax). Events whose
    window would leave the recording are dropped and counted as rejected.
    """
    label_map = {str(k): v for k, v in label_map.items()}
    unknown = sorted(set(label_map.values()) - set(classes))
    if unknown:
        raise ValueError(f"label_map names classes {unknown} that are not in classes={classes}")
    desc = rec.annotations.description.astype(str)
    hit = np.isin(desc, list(label_map))
    if not hit.any():
        raise RecordingError(rec.source, f"label map keys {sorted(label_map)} match no event; "
                             f"the recording has {rec.annotations.counts() or 'no events'}",
                             "fix dataset.labels.map to use the event names shown")
    size = _n_samples(tmax - tmin, rec.sfreq)
    starts = np.round((rec.annotations.onset[hit] + tmin) * rec.sfreq).astype(np.int64)
    labels = np.array([classes.index(label_map[d]) for d in desc[hit]], dtype=np.int64)
    inside = (starts >= 0) & (starts + size <= rec.n_times)
    starts, labels_in = starts[inside], labels[inside]
    windows = np.empty((len(starts), rec.n_channels, size), dtype=np.float32)
    for i, s in enumerate(starts):
        windows[i] = rec.data[:, s:s + size]
    keep = _reject(windows, reject_max_abs)
    onsets = starts / rec.sfreq
    return WindowSet(data=windows[keep], onset=onsets[keep], label=labels_in[keep],
                     n_rejected=int((~keep).sum() + (~inside).sum()),
                     rejected_onsets=onsets[~keep].tolist())


def to_patches(window: np.ndarray, patch_len: int) -> np.ndarray:
    """(..., C, T) -> (..., C, N, P) as a view; T must be a multiple of ``patch_len``."""
    t = window.shape[-1]
    if t % patch_len:
        raise ValueError(f"window of {t} samples is not a whole number of {patch_len}-sample "
                         "patches; choose a window length that is a multiple of the patch")
    return window.reshape(*window.shape[:-1], t // patch_len, patch_len)

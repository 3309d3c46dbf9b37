"""Muse headband CSV exports (muse-lsl style): a timestamp column, channels, a marker column."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import RecordingError
from ..recording import Annotations, Recording

#: Nominal rate of the Muse 2016 headband; the timestamps are checked against it.
MUSE_SFREQ = 256.0


def is_muse_csv(path: Path) -> bool:
    """A CSV whose header starts with ``timestamps`` and has a ``Marker`` column."""
    with open(path, "r", encoding="utf-8", errors="replace") as fh:
        header = fh.readline().strip().split(",")
    return bool(header) and header[0].strip().lower() == "timestamps" and any(
        h.strip().lower().startswith("marker") for h in header)


def read_muse_csv(path: Path, sfreq: float | None = None) -> Recording:
    """Read one Muse CSV; values are microvolts, markers become annotations.

    The marker column is named ``Marker`` or ``Marker0`` depending on the recording software
    version; any column starting with ``Marker`` is accepted. Non-zero markers are events.
    """
    import pandas as pd

    try:
        table = pd.read_csv(path)
    except Exception as err:
        raise RecordingError(path, f"not a readable CSV ({err})",
                             "check the export; the first line must be the header") from err
    cols = [c.strip() for c in table.columns]
    table.columns = cols
    markers = [c for c in cols if c.lower().startswith("marker")]
    if not cols or cols[0].lower() != "timestamps" or len(markers) != 1:
        raise RecordingError(path, f"unexpected Muse CSV columns {cols}",
                             "expected 'timestamps', channel columns and one 'Marker' column")
    channels = [c for c in cols[1:] if c != markers[0]]
    if len(table) < 2:
        raise RecordingError(path, f"only {len(table)} samples", "the recording is empty")
    stamps = table["timestamps"].to_numpy(dtype=float)
    measured = 1.0 / float(np.median(np.diff(stamps)))
    rate = float(sfreq) if sfreq else MUSE_SFREQ
    if abs(measured - rate) / rate > 0.05:
        raise RecordingError(path, f"timestamps say {measured:.1f} Hz, expected {rate:g} Hz",
                             "pass sfreq= with the true rate")
    values = table[channels].to_numpy(dtype=np.float32).T * np.float32(1e-6)  # uV -> V
    code = table[markers[0]].to_numpy()
    code = np.nan_to_num(code.astype(float)).astype(int)
    hits = np.flatnonzero(code != 0)
    ann = Annotations(hits / rate, np.zeros(len(hits)), code[hits].astype(str))
    types = ["eeg"] * len(channels)  # 'Right AUX' is re-typed by name downstream
    return Recording(
        data=np.ascontiguousarray(values), sfreq=rate, ch_names=channels, ch_types=types,
        annotations=ann, source=str(path),
        provenance={"reader": "muse_csv", "marker_column": markers[0],
                    "measured_sfreq": round(measured, 3),
                    "start_unix_s": float(stamps[0])})

"""Zip archives of short single-channel segments: the Bonn and the New Delhi epilepsy sets.

Neither set ships channel names, positions or subject ids; each segment is one recording of
one channel whose class is given by the folder it sits in.
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Iterator

import numpy as np

from ...errors import RecordingError
from ..recording import Recording

BONN_SFREQ = 173.61
DELHI_SFREQ = 200.0


def archive_kind(path: Path) -> str | None:
    """``"bonn"``, ``"delhi"`` or None, from what the zip holds."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except zipfile.BadZipFile:
        return None
    if any(n.lower().endswith(".txt") and "/" in n and n.split("/")[0][:2] in
           ("A_", "B_", "C_", "D_", "E_") for n in names):
        return "bonn"
    if any(n.lower().endswith(".mat") for n in names):
        return "delhi"
    return None


def list_segments(path: Path) -> list[str]:
    """Members of the archive that are signal segments, sorted."""
    kind = archive_kind(path)
    if kind is None:
        raise RecordingError(path, "zip holds neither Bonn .txt nor Delhi .mat segments",
                             "unpack it and point brainfm at the recordings inside")
    suffix = ".txt" if kind == "bonn" else ".mat"
    with zipfile.ZipFile(path) as zf:
        return sorted(n for n in zf.namelist() if n.lower().endswith(suffix)
                      and not n.split("/")[-1].startswith("."))


def _segment_class(member: str) -> str:
    """Bonn ``E_S/S001.txt`` -> ``S``; Delhi ``.../ictal/ictal1.mat`` -> ``ictal``."""
    folder = member.rstrip("/").split("/")[-2]
    return folder.split("_")[-1] if "_" in folder else folder


def read_segment(path: Path, member: str) -> Recording:
    """One segment of a Bonn or Delhi archive as a one-channel recording (values in uV)."""
    kind = archive_kind(path)
    source = f"{path}::{member}"
    try:
        with zipfile.ZipFile(path) as zf:
            raw = zf.read(member)
    except KeyError as err:
        raise RecordingError(source, "no such member in the archive",
                             "list members with brainfm.data.readers.list_segments()") from err
    if kind == "bonn":
        try:
            values = np.loadtxt(io.BytesIO(raw), dtype=np.float32)
        except ValueError as err:
            raise RecordingError(source, f"not a column of numbers ({err})",
                                 "re-extract the archive") from err
        sfreq, reader = BONN_SFREQ, "bonn_zip"
    else:
        from scipy.io import loadmat

        try:
            mat = loadmat(io.BytesIO(raw))
        except Exception as err:
            raise RecordingError(source, f"not a readable .mat file ({err})",
                                 "re-extract the archive") from err
        arrays = [v for k, v in mat.items() if not k.startswith("__")]
        if len(arrays) != 1:
            raise RecordingError(source, f"expected one variable, found {len(arrays)}",
                                 "Delhi segments hold exactly one 1024 x 1 array")
        values = np.asarray(arrays[0], dtype=np.float32).ravel()
        sfreq, reader = DELHI_SFREQ, "delhi_zip"
    label = _segment_class(member)
    stem = member.split("/")[-1].rsplit(".", 1)[0]
    return Recording(
        data=(values * np.float32(1e-6))[None, :], sfreq=sfreq, ch_names=["EEG"],
        ch_types=["eeg"], source=source, run=stem,
        provenance={"reader": reader, "member": member, "segment_class": label,
                    "units_assumed": "uV"})


def iter_segments(path: Path) -> Iterator[tuple[str, str]]:
    """(member, class) for every segment in the archive."""
    for member in list_segments(path):
        yield member, _segment_class(member)

"""``read_recording``: any supported source -> a :class:`Recording` with canonical channels.

Every reader returns raw SI-unit signals; this module then applies the steps all sources
share: canonical channel names, types inferred from names, user type overrides, a check for
duplicate names, and template positions for scalp electrodes without file positions.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import RecordingError
from ..channels import apply_type_overrides, infer_type, normalise_name
from ..recording import SI_UNITS, Annotations, Recording
from ..sensors import DEFAULT_TEMPLATE, fill_template_positions
from .mne_files import read_evoked_file, read_mne_file
from .muse_csv import is_muse_csv, read_muse_csv
from .segment_archives import list_segments, read_segment

__all__ = ["FOLDER_SUFFIXES", "READERS", "RECORDING_SUFFIXES", "from_array", "list_segments",
           "read_annotations", "read_recording", "reader_for"]


def _read_archive(path: Path, *, member=None, **_) -> Recording:
    if member is None:
        members = list_segments(path)
        raise RecordingError(path, f"an archive of {len(members)} segments",
                             f"pass member=, e.g. member={members[0]!r}")
    return read_segment(path, member)


def _read_csv(path: Path, *, sfreq=None, **_) -> Recording:
    if not is_muse_csv(path):
        raise RecordingError(path, "a CSV that is not a Muse export",
                             "load it with numpy and use brainfm.from_array()")
    return read_muse_csv(path, sfreq=sfreq)


def _read_evoked(path: Path, *, condition=None, **_) -> Recording:
    return read_evoked_file(path, condition=condition)


def _read_continuous(path: Path, *, events="auto", **_) -> Recording:
    return read_mne_file(path, events=events)


#: File ending -> reader: the one place that says which reader a file goes to. The longest
#: ending that matches wins (``-ave.fif`` before ``.fif``); an ending not listed goes to MNE's
#: continuous reader too, which knows more formats than the ones brainfm is tested on.
READERS = {
    **dict.fromkeys((".edf", ".bdf", ".gdf", ".fif", ".fif.gz", ".set", ".vhdr", ".cnt",
                     ".eeg", ".lay", ".mff", ".mat", ".ds", ".con", ".sqd"), _read_continuous),
    ".csv": _read_csv,
    **dict.fromkeys(("-ave.fif", "_ave.fif", "-ave.fif.gz", "_ave.fif.gz"), _read_evoked),
    ".zip": _read_archive,
}
#: Endings of files that are one recording each (an archive holds many; a folder input of
#: ``brainfm-embed`` takes every file with one of these endings).
RECORDING_SUFFIXES = tuple(ending for ending, read in READERS.items() if read is not _read_archive)
#: Recording formats that are folders rather than files.
FOLDER_SUFFIXES = (".ds", ".mff")


def reader_for(path: Path):
    """The reader of ``path``, from :data:`READERS`."""
    name = Path(path).name.lower()
    for ending in sorted(READERS, key=len, reverse=True):
        if name.endswith(ending):
            return READERS[ending]
    return _read_continuous


def finalise_channels(rec: Recording, ch_types: dict | None = None,
                      montage: str | None = DEFAULT_TEMPLATE) -> Recording:
    """Canonical names, inferred and overridden types, duplicate check, template positions."""
    raw_names = list(rec.ch_names)
    names = [normalise_name(n) for n in raw_names]
    types = [infer_type(n, t) for n, t in zip(raw_names, rec.ch_types)]
    types = apply_type_overrides(names, types, ch_types)
    seen: dict[str, str] = {}
    for raw_name, name in zip(raw_names, names):
        if name in seen:
            raise RecordingError(
                rec.source, f"channels {seen[name]!r} and {raw_name!r} both map to {name!r}",
                "drop one of them before reading (e.g. an old T3 beside a new T7), or rename "
                "it in the file")
        seen[name] = raw_name
    renamed = {r: n for r, n in zip(raw_names, names) if r != n}
    retyped = {n: t for n, t, t0 in zip(names, types, rec.ch_types) if t != t0}
    out = rec.replace(ch_names=names, ch_types=types,
                      bads=[names[raw_names.index(b)] for b in rec.bads if b in raw_names])
    out.units = [SI_UNITS.get(t, u) for t, u in zip(types, rec.units)]
    out.with_step("channels", renamed=renamed, retyped=retyped)
    return fill_template_positions(out, montage=montage)


def read_recording(path, *, subject=None, session=None, run=None, events="auto",
                   annotations=None, ch_types: dict | None = None,
                   montage: str | None = DEFAULT_TEMPLATE, member: str | None = None,
                   condition=None, sfreq: float | None = None) -> Recording:
    """Read one recording from any supported source.

    Parameters
    ----------
    path : path-like
        Any file MNE reads (EDF, BDF, GDF, FIF, BrainVision, EEGLAB, Nihon Kohden, Persyst,
        CTF, KIT, FieldTrip ``.mat``, evoked ``-ave.fif``), a Muse CSV, or a Bonn/Delhi zip
        (with ``member``).
    subject, session, run : str, optional
        Identifiers carried into windows and the corpus manifest.
    events : "auto" | path | None
        An MNE event file to use as annotations; "auto" finds ``<name>-eve.fif``.
    annotations : path, optional
        A separate annotation file (e.g. a hypnogram) whose annotations replace the file's.
    ch_types : dict, optional
        ``{glob pattern: type}`` overrides applied to the canonical names, e.g.
        ``{"X*": "ecog"}``.
    montage : str or None
        Built-in MNE montage for EEG channels without positions in the file; None places none.
    member : str, optional
        The segment to read from a zip archive.
    condition : str or int, optional
        The condition to read from an evoked file.
    sfreq : float, optional
        The sampling rate of formats that do not store one reliably (Muse CSV).
    """
    path = Path(path)
    if not path.exists():
        raise RecordingError(path, "no such file", "check the path and the data root")
    if path.is_dir() and path.suffix.lower() not in FOLDER_SUFFIXES:
        raise RecordingError(path, "is a folder", "point at a recording file inside it")
    rec = reader_for(path)(path, events=events, member=member, condition=condition,
                           sfreq=sfreq)
    if annotations is not None:
        rec.annotations = read_annotations(annotations)
        rec.provenance["annotation_file"] = str(annotations)
    rec.subject = rec.subject if subject is None else str(subject)
    rec.session = rec.session if session is None else str(session)
    rec.run = rec.run if run is None else str(run)
    return finalise_channels(rec, ch_types=ch_types, montage=montage)


def read_annotations(path) -> Annotations:
    """Annotations from any file MNE reads them from (EDF+ hypnograms, BrainVision markers)."""
    import mne

    path = Path(path)
    try:
        ann = mne.read_annotations(path)
    except Exception as err:
        raise RecordingError(path, f"no annotations could be read ({err})",
                             "check that it is an annotation file of a format MNE knows") from err
    return Annotations(ann.onset, ann.duration, ann.description)


def from_array(data, sfreq: float, ch_names, ch_types=None, *, units: str = "V",
               positions=None, annotations: Annotations | None = None, subject=None,
               session=None, run=None, name: str = "<array>", ch_type_overrides=None,
               montage: str | None = DEFAULT_TEMPLATE) -> Recording:
    """A recording from an in-memory (n_channels, n_times) array.

    ``units`` is what one unit of ``data`` is: ``"V"``, ``"mV"``, ``"uV"``, or ``"T"``;
    the result is in SI units like every reader's.
    """
    arr = np.asarray(data)
    if arr.ndim != 2:
        raise RecordingError(name, f"data must be 2-D (channels, times), got shape {arr.shape}",
                             "reshape it or pass one recording at a time")
    if arr.shape[0] != len(ch_names):
        raise RecordingError(name, f"{arr.shape[0]} rows but {len(ch_names)} channel names",
                             "data must be (n_channels, n_times)")
    scale = {"V": 1.0, "mV": 1e-3, "uV": 1e-6, "µV": 1e-6, "T": 1.0, "fT": 1e-15}
    if units not in scale:
        raise RecordingError(name, f"unknown units {units!r}", f"use one of {sorted(scale)}")
    ch_types = list(ch_types) if ch_types is not None else ["eeg"] * arr.shape[0]
    pos = None if positions is None else np.asarray(positions, dtype=np.float32)
    rec = Recording(data=(arr.astype(np.float32) * np.float32(scale[units])), sfreq=float(sfreq),
                    ch_names=[str(c) for c in ch_names], ch_types=ch_types, positions=pos,
                    position_source=None if pos is None else
                    ["file" if np.all(np.isfinite(p)) else "missing" for p in pos],
                    annotations=annotations or Annotations(), subject=subject,
                    session=session, run=run, source=name,
                    provenance={"reader": "from_array", "input_units": units})
    return finalise_channels(rec, ch_types=ch_type_overrides, montage=montage)

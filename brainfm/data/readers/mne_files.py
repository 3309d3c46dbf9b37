"""Every file format MNE reads, into a float32 :class:`Recording` without a float64 copy."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ...errors import RecordingError
from ..recording import Annotations, Recording
from ..sensors import positions_from_info

#: Seconds of all channels read per block; bounds the float64 scratch MNE hands back.
_BLOCK_SECONDS = 60.0


def _annotations_from_raw(raw) -> Annotations:
    ann = raw.annotations
    if len(ann):
        first = raw.first_samp / raw.info["sfreq"]
        # MNE stores onsets relative to meas start; make them relative to the first sample
        onset = ann.onset - (first if ann.orig_time is not None else 0.0)
        return Annotations(onset, ann.duration, ann.description)
    return Annotations()


def _annotations_from_stim(raw) -> Annotations:
    """Events written in a stim channel, as zero-length annotations named by their code."""
    import mne

    if "stim" not in raw.get_channel_types():
        return Annotations()
    events = mne.find_events(raw, shortest_event=1, initial_event=True, verbose="error")
    if not len(events):
        return Annotations()
    onset = (events[:, 0] - raw.first_samp) / raw.info["sfreq"]
    return Annotations(onset, np.zeros(len(events)), events[:, 2].astype(str))


def _annotations_from_event_file(path: Path, raw) -> Annotations:
    import mne

    events = mne.read_events(path, verbose="error")
    onset = (events[:, 0] - raw.first_samp) / raw.info["sfreq"]
    return Annotations(onset, np.zeros(len(events)), events[:, 2].astype(str))


def sibling_event_file(path: Path) -> Path | None:
    """``name_raw.fif`` / ``name.fif`` -> ``name-eve.fif`` next to it, when that exists."""
    stem = path.name
    for suffix in ("_raw.fif", "-raw.fif", ".fif"):
        if stem.endswith(suffix):
            cand = path.with_name(stem[: -len(suffix)] + "-eve.fif")
            if cand.exists() and cand != path:
                return cand
    return None


def _open_raw(path: Path):
    import mne

    name = path.name.lower()
    if name.endswith(".mat"):
        # FieldTrip structures: MNE builds the measurement info from the file itself
        try:
            return mne.io.read_raw_fieldtrip(path, info=None)
        except (RuntimeError, ValueError, KeyError) as err:
            if "raw data" not in str(err).lower():
                raise
            return _epochs_as_raw(mne.read_epochs_fieldtrip(path, info=None))
    return mne.io.read_raw(path, preload=False, verbose="error")


def _epochs_as_raw(epochs):
    """Epoched data laid end to end, each epoch's start marked with its event code."""
    import mne

    data = np.concatenate(list(epochs.get_data()), axis=1)
    raw = mne.io.RawArray(data, epochs.info, verbose="error")
    n = len(epochs.times)
    onset = np.arange(len(epochs)) * n / epochs.info["sfreq"]
    raw.set_annotations(mne.Annotations(onset, np.full(len(epochs), n / epochs.info["sfreq"]),
                                        [f"epoch/{code}" for code in epochs.events[:, 2]]))
    return raw


def _check_edf_complete(path: Path, raw) -> None:
    """EDF/BDF whose header declares more data records than the file holds.

    MNE reads such a file as a shorter recording and only warns; a prep job must not take a
    half-copied file for a complete one.
    """
    if path.suffix.lower() not in (".edf", ".bdf"):
        return
    with open(path, "rb") as fh:
        head = fh.read(256)
    try:
        declared, record_s = int(head[236:244]), float(head[244:252])
    except ValueError:
        return
    extras = getattr(raw, "_raw_extras", None) or [{}]
    found = extras[0].get("n_records")
    if declared > 0 and found is not None and found < declared:  # -1 means "unknown"
        raise RecordingError(path, f"the file is truncated: its header declares {declared} "
                             f"records ({declared * record_s:g} s) but it holds {found} "
                             f"({found * record_s:g} s)", "re-export or re-download it")


def _annotation_only_error(path: Path) -> RecordingError:
    return RecordingError(path, "the file holds no signal channels, only annotations "
                          "(e.g. a Sleep-EDF hypnogram)",
                          "read it with brainfm.read_annotations() and pass it as annotations= "
                          "when reading the recording it belongs to")


def _float32_data(raw) -> np.ndarray:
    """All samples as float32, read in time blocks so float64 never holds the whole file."""
    n_ch, n_t = len(raw.ch_names), raw.n_times
    out = np.empty((n_ch, n_t), dtype=np.float32)
    step = max(int(_BLOCK_SECONDS * raw.info["sfreq"]), 1)
    for start in range(0, n_t, step):
        stop = min(start + step, n_t)
        out[:, start:stop] = raw.get_data(start=start, stop=stop)
    return out


def read_evoked_file(path: Path, condition=None) -> Recording:
    """An averaged response (``-ave.fif``) as a short recording of one condition."""
    import mne

    evoked = mne.read_evokeds(path, condition=0 if condition is None else condition,
                              verbose="error")
    pos, ori, src = positions_from_info(evoked.info)
    return Recording(
        data=evoked.data.astype(np.float32), sfreq=float(evoked.info["sfreq"]),
        ch_names=list(evoked.ch_names), ch_types=evoked.get_channel_types(),
        positions=pos, orientations=ori, position_source=src, bads=list(evoked.info["bads"]),
        source=str(path),
        provenance={"reader": "mne.read_evokeds", "condition": evoked.comment,
                    "nave": int(evoked.nave), "tmin": float(evoked.tmin)})


def read_mne_file(path: Path, events: str | Path | None = "auto") -> Recording:
    """Read any continuous recording MNE supports.

    ``events`` names an MNE event file (``-eve.fif``) to turn into annotations; ``"auto"``
    uses the sibling ``<name>-eve.fif`` when there is one, and otherwise the file's own
    annotations, then its stim channel.
    """
    import mne

    with warnings.catch_warnings(), mne.utils.use_log_level("error"):
        warnings.simplefilter("ignore")
        try:
            raw = _open_raw(path)
        except ValueError as err:
            if "no channels" in str(err).lower():
                raise _annotation_only_error(path) from err
            raise RecordingError(path, f"MNE could not read it ({err})",
                                 "check that the file is complete and of the format its "
                                 "extension says") from err
        except (OSError, EOFError, IndexError, KeyError, TypeError, RuntimeError) as err:
            raise RecordingError(path, f"the file is truncated or corrupt "
                                 f"({type(err).__name__}: {err})",
                                 "re-export or re-download it") from err
        except Exception as err:  # MNE's readers also fail with bare assertions
            raise RecordingError(path, f"MNE could not read it ({type(err).__name__}: {err})",
                                 "check that the file is complete and of the format its "
                                 "extension says; for plain-text or numpy tables load them "
                                 "and use brainfm.from_array()") from err
        _check_edf_complete(path, raw)
        if len(raw.ch_names) == 0:
            raise _annotation_only_error(path)
        try:
            data = _float32_data(raw)
        except Exception as err:  # MNE raises many types on short reads
            raise RecordingError(path, f"the signal could not be read past its header "
                                 f"({type(err).__name__}: {err}); the file is probably "
                                 "truncated", "re-export or re-download it") from err

    event_file = sibling_event_file(path) if events == "auto" else (
        Path(events) if events else None)
    if event_file is not None:
        ann = _annotations_from_event_file(event_file, raw)
    else:
        ann = _annotations_from_raw(raw)
        if not len(ann):
            ann = _annotations_from_stim(raw)
    pos, ori, src = positions_from_info(raw.info)
    implausible = [n for n, s in zip(raw.ch_names, src) if s == "implausible"]
    src = ["missing" if s == "implausible" else s for s in src]
    return Recording(
        data=data, sfreq=float(raw.info["sfreq"]), ch_names=list(raw.ch_names),
        ch_types=raw.get_channel_types(), positions=pos, orientations=ori,
        position_source=src, annotations=ann, bads=list(raw.info["bads"]), source=str(path),
        provenance={"reader": f"mne ({type(raw).__name__})",
                    "event_file": str(event_file) if event_file else None,
                    "implausible_file_positions": implausible})

"""The data contract of a checkpoint, in one place: built from the stores a model was
trained on, written into config.json, applied to a new recording, and checked against a
prepared store.

The contract is what a user needs to bring a recording to a model: the standardisation
(rate, filters, notch, reference, units and scale per channel type), the window length, the
sensor types seen in training, how the model tells channels apart (``channel_encoding``, the
family record's answer for an architecture) and, where that is by place in a fixed montage,
the channel set in order. Sensor-encoded models take any montage as it is; for fixed-montage
ones the channel set is selected (and missing channels interpolated from sensor positions,
MNE spherical splines, when allowed) by :func:`split_channel_set`, for recordings and store
windows alike.
"""
from __future__ import annotations

import hashlib
import json
import warnings
from collections import Counter

import numpy as np

from ..errors import BrainfmError, RecordingError
from .readers import finalise_channels, read_recording
from .readers.mne_files import _annotations_from_raw
from .recording import Recording
from .sensors import (DEFAULT_TEMPLATE, SENSOR_TYPE_IDS, positions_from_info, sensor_features,
                      template_positions)
from .standardise import PHYSICAL_UNIT, StandardiseConfig, standardise

#: MEG channel types (fields, not potentials: never placed at electrode sites).
_MEG = ("mag", "grad")
#: How a model knows which channel is which: by sensor features (any montage), by its place
#: in a fixed channel order (ACPE convolution, flatten heads), or by a channel index table.
ENCODINGS = ("sensor", "channel_order", "channel_index")
#: Standardisation keys that must agree between a store and a checkpoint (the mains notch
#: is a property of where a dataset was recorded and may differ).
_MUST_AGREE = ("sfreq", "l_freq", "h_freq", "filter_order", "scale", "reference")


class ContractError(BrainfmError, ValueError):
    """Data prepared otherwise than a checkpoint expects; the message names the keys."""


# ---- build and serialise --------------------------------------------------------------------
def corpus_contract(stores) -> dict:
    """What a model trained on these stores expects of its input (for its checkpoint): the
    standardisation, rate, window length, sensor types, the channel set when every recording
    shares one (in order), the corpus hours and recording ids: a run's ``extra``, from which
    :func:`build_contract` makes the checkpoint's contract."""
    metas = [s.meta for s in stores]
    montages, type_ids, lengths, seconds = set(), set(), Counter(), 0.0
    for store in stores:
        ok = store.recordings[store.recordings["status"] == "ok"]
        montages.update(tuple(json.loads(n)) for n in ok["ch_names"])
        type_ids.update(int(row[6]) for s in ok["sensors"] for row in json.loads(s))
        n = store.windows["n_samples"]
        lengths.update((n / store.sfreq).round(6).tolist())
        seconds += float(n.sum()) / store.sfreq
    names = {v: k for k, v in SENSOR_TYPE_IDS.items()}
    return {"datasets": [m["dataset"]["name"] for m in metas],
            "standardise": metas[0]["standardise"] if metas else {},
            "standardise_per_dataset": {m["dataset"]["name"]: m["standardise"] for m in metas},
            "sfreq": metas[0]["sfreq"] if metas else None,
            "window_s": lengths.most_common(1)[0][0] if lengths else None,
            "sensor_types": sorted(names[i] for i in type_ids if i in names),
            "channels": list(next(iter(montages))) if len(montages) == 1 else None,
            "n_montages": len(montages),
            "hours": round(seconds / 3600, 4),
            "recording_ids": sorted({i for s in stores for i in s.recording_ids()})}


def units_of(standardise: dict) -> dict[str, str]:
    """What one model unit is, per channel type (e.g. ``{"eeg": "100 uV"}``)."""
    scale = StandardiseConfig.from_dict(standardise).scale
    out = {}
    for kind, factor in sorted(scale.items()):
        unit = PHYSICAL_UNIT.get(kind, ("uV", 1e6))[0]
        out[kind] = f"{factor:g} {unit}" if factor != 1 else unit
    return out


def build_contract(encoding: str, arch: dict, extra: dict) -> dict:
    """config.json's ``contract``: what a run's ``extra`` (:func:`corpus_contract`) and the
    model's architecture and channel ``encoding`` (its family record's answer) say."""
    std = dict(extra.get("standardise") or {})
    cfg = StandardiseConfig.from_dict(std)
    sfreq = extra.get("sfreq") or cfg.sfreq or arch.get("sfreq")
    rejection = (extra.get("training") or {}).get("rejection") or {}
    return {
        "sfreq": sfreq,
        "patch_len": arch.get("patch_len"),
        "window_s": extra.get("window_s"),
        "units": units_of(std),
        "filters": {"l_freq": cfg.l_freq, "h_freq": cfg.h_freq, "order": cfg.filter_order,
                    "design": "Butterworth, zero-phase (forward-backward)"},
        "notch": {"freq": cfg.notch, "q": cfg.notch_q},
        "reference": cfg.reference,
        "rejection": {"rule": "training windows with max|x| >= max_abs (model units) were "
                              "left out", "max_abs": {d: r.get("max_abs")
                                                     for d, r in rejection.items()}},
        "sensor_types": extra.get("sensor_types"),
        "channel_encoding": encoding,
        "channels": extra.get("channels"),
        "n_montages": extra.get("n_montages"),
        "standardise": cfg.as_dict() if std else None,
        "standardise_per_dataset": extra.get("standardise_per_dataset") or {},
        "known": bool(std),
    }


def fixed_channel_set(contract: dict) -> list[str] | None:
    """The channels, in order, a fixed-montage checkpoint needs; None for a sensor-encoded
    one (any montage) or one that records no channel set."""
    channels = list(contract.get("channels") or [])
    if contract.get("channel_encoding", "sensor") == "sensor" or not channels:
        return None
    return channels


def split_channel_set(names, channels) -> tuple[list[str], list[str]]:
    """(present, missing): the ``channels`` a fixed-montage checkpoint needs that ``names``
    (a recording's or a store recording's channels) has, and those it lacks, in order."""
    have = set(names)
    return [n for n in channels if n in have], [n for n in channels if n not in have]


# ---- apply to a recording -------------------------------------------------------------------
def as_recording(obj):
    """A :class:`~brainfm.data.Recording` from a Recording, an MNE Raw or a file path."""
    if isinstance(obj, Recording):
        return obj
    try:
        import mne
    except ImportError:  # pragma: no cover - mne is a dependency
        mne = None
    if mne is not None and isinstance(obj, mne.io.BaseRaw):
        return recording_from_raw(obj)
    if isinstance(obj, (str, bytes)) or hasattr(obj, "__fspath__"):
        return read_recording(obj)
    raise TypeError(f"cannot prepare a {type(obj).__name__}: pass a brainfm Recording, an MNE "
                    "Raw, or a path to a recording")


def recording_from_raw(raw):
    """An MNE Raw as a brainfm Recording: SI units, file positions, canonical names."""
    pos, ori, src = positions_from_info(raw.info)
    src = ["missing" if s == "implausible" else s for s in src]
    source = str(raw.filenames[0]) if getattr(raw, "filenames", None) and raw.filenames[0] \
        else "<mne.io.Raw>"
    rec = Recording(data=raw.get_data().astype(np.float32), sfreq=float(raw.info["sfreq"]),
                    ch_names=list(raw.ch_names), ch_types=raw.get_channel_types(),
                    positions=pos, orientations=ori, position_source=src,
                    annotations=_annotations_from_raw(raw), bads=list(raw.info["bads"]),
                    source=source, provenance={"reader": f"mne object ({type(raw).__name__})"})
    return finalise_channels(rec)


def _standardise_config(contract: dict, overrides: dict):
    std = contract.get("standardise")
    if not std:
        warnings.warn("this checkpoint records no data contract; brainfm's default "
                      "standardisation (200 Hz, 0.3-75 Hz, units of 100 uV) is assumed",
                      RuntimeWarning, stacklevel=4)
        std = {}
    return StandardiseConfig.from_dict({**dict(std), **overrides})


def _channel_set_types(contract: dict) -> list[str]:
    return list(contract.get("sensor_types") or ["eeg"])


def interpolate_channels(rec, names: list[str]):
    """``rec`` with channels ``names`` added, interpolated from its EEG channels by MNE's
    spherical splines (positions: the file's, else the 10-05 template's). Linear in the
    data, so it works in any units (here: after standardisation)."""
    import mne

    table = template_positions(DEFAULT_TEMPLATE)
    unknown = [n for n in names if n.upper() not in table]
    if unknown:
        raise RecordingError(rec.source, f"channel(s) {unknown} are missing and have no "
                             f"{DEFAULT_TEMPLATE} template position to interpolate them at",
                             "record them, or use a sensor-encoded checkpoint")
    donors = [i for i, (t, n) in enumerate(zip(rec.ch_types, rec.ch_names))
              if t == "eeg" and np.all(np.isfinite(rec.positions[i])) and n not in rec.bads]
    if len(donors) < 4:
        raise RecordingError(rec.source, f"only {len(donors)} EEG channel(s) with positions to "
                             f"interpolate {names} from", "record more channels, or use a "
                             "sensor-encoded checkpoint")
    pos = np.concatenate([rec.positions[donors], np.stack([table[n.upper()] for n in names])])
    ch_names = [rec.ch_names[i] for i in donors] + list(names)
    info = mne.create_info(ch_names, rec.sfreq, "eeg")
    data = np.concatenate([rec.data[donors].astype(np.float64),
                           np.zeros((len(names), rec.n_times))])
    raw = mne.io.RawArray(data, info, verbose="error")
    montage = mne.channels.make_dig_montage(dict(zip(ch_names, pos.astype(float))),
                                            coord_frame="head")
    raw.set_montage(montage, verbose="error")
    raw.info["bads"] = list(names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw.interpolate_bads(reset_bads=True, origin="auto", verbose="error")
    filled = raw.get_data(picks=list(names)).astype(np.float32)
    out = rec.replace(
        data=np.concatenate([rec.data, filled]), ch_names=rec.ch_names + list(names),
        ch_types=rec.ch_types + ["eeg"] * len(names),
        positions=np.concatenate([rec.positions, pos[len(donors):]]).astype(np.float32),
        orientations=np.concatenate([rec.orientations, np.zeros((len(names), 3), np.float32)]),
        position_source=rec.position_source + [f"template:{DEFAULT_TEMPLATE}"] * len(names),
        units=rec.units + [rec.units[donors[0]]] * len(names))
    return out.with_step("interpolate", channels=list(names), method="spherical splines (MNE)",
                         from_channels=len(donors))


def select_channel_set(rec, channels: list[str], types: list[str], donors: bool = False):
    """Before standardising: refuse what cannot be brought to a fixed montage, keep only its
    channels (and, with ``donors``, the other EEG channels with positions, to interpolate
    from). Returns (recording, names the recording lacks)."""
    present, missing = split_channel_set(rec.ch_names, channels)
    meg = [n for n, t in zip(rec.ch_names, rec.ch_types) if t in _MEG]
    if meg and not present and not any(t in _MEG for t in types):
        eeg = sum(t == "eeg" for t in rec.ch_types)
        raise RecordingError(rec.source, f"MEG data ({len(meg)} sensors"
                             + (f"; its {eeg} EEG channels carry none of the checkpoint's "
                                "electrode names" if eeg else "") + ") for a checkpoint that "
                             f"knows {len(channels)} {'/'.join(types)} channels by their place "
                             "in a fixed montage: magnetic fields are not scalp potentials and "
                             "cannot be placed at or interpolated to electrode sites",
                             "use a sensor-encoded checkpoint (positional=sensor), which takes "
                             "MEG sensors by position and orientation")
    keep = [rec.ch_names.index(n) for n in present]
    if donors and missing:
        keep += [i for i, (n, t) in enumerate(zip(rec.ch_names, rec.ch_types))
                 if t == "eeg" and n not in set(channels) and np.all(np.isfinite(rec.positions[i]))]
    out = rec.pick(keep)
    dropped = [n for n in rec.ch_names if n not in set(out.ch_names)]
    out.with_step("channel_set", kept=len(present), dropped=dropped, missing=missing)
    return out, missing


def prepare_recording(recording, contract: dict, allow_interpolation: bool = False,
                      **overrides):
    """``recording`` (Recording, MNE Raw or path) brought to ``contract``: standardised,
    and for fixed-montage checkpoints the channel set selected, interpolated and ordered.

    ``overrides`` change single standardisation keys (e.g. ``notch=60.0`` for a recording
    made where mains is 60 Hz).
    """
    rec = as_recording(recording)
    cfg = _standardise_config(contract, overrides)
    key = contract_key(contract, cfg)
    done = [s for s in rec.provenance.get("steps", []) if s.get("step") == "contract"]
    if done:
        if done[-1].get("key") == key:
            return rec  # prepared for this very contract already
        raise RecordingError(rec.source, "was prepared for another checkpoint's data contract "
                             "(its samples are filtered and scaled for that one)",
                             "prepare the original recording instead")
    channels = fixed_channel_set(contract) or []
    encoding = contract.get("channel_encoding", "sensor")
    fixed = bool(channels)
    missing: list[str] = []
    if fixed:
        rec, missing = select_channel_set(rec, channels, _channel_set_types(contract),
                                          donors=allow_interpolation)
        if missing and not allow_interpolation:
            raise RecordingError(rec.source, f"lacks {len(missing)} of the checkpoint's "
                                 f"{len(channels)} channels: {', '.join(missing)}",
                                 "pass allow_interpolation=True to interpolate them from "
                                 "sensor positions (spherical splines), or record them")
    elif encoding != "sensor":
        warnings.warn(f"{rec.source}: the checkpoint knows channels by their order "
                      f"({encoding}) but records no channel set; the recording's own order "
                      "is used as is", RuntimeWarning, stacklevel=3)
    else:
        seen = set(contract.get("sensor_types") or [])
        new = sorted({t for t in rec.ch_types if t in cfg.pick_types} - seen) if seen else []
        if new:
            warnings.warn(f"{rec.source}: sensor type(s) {new} were not in this checkpoint's "
                          f"training data ({sorted(seen)}); the model encodes them but has "
                          "never seen them", RuntimeWarning, stacklevel=3)
    out = standardise(rec, cfg)
    if fixed:
        lost = [n for n in channels if n not in out.ch_names and n not in missing]
        if lost and not allow_interpolation:
            raise RecordingError(rec.source, f"channel(s) {lost} are flat and were dropped by "
                                 "standardisation, but the checkpoint needs them",
                                 "pass allow_interpolation=True to interpolate them")
        if missing or lost:
            out = interpolate_channels(out, missing + lost)
        out = out.pick([out.ch_names.index(n) for n in channels])
    return out.with_step("contract", key=key, encoding=encoding,
                         interpolated=missing if fixed else [], channels=len(out.ch_names))


def contract_key(contract: dict, cfg) -> str:
    """A short hash of what preparation did (standardisation and channel set): a recording
    prepared for one checkpoint is not silently taken as prepared for another."""
    what = {"standardise": cfg.as_dict(), "channels": contract.get("channels"),
            "encoding": contract.get("channel_encoding", "sensor")}
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:16]


def recording_sensors(rec) -> np.ndarray:
    return sensor_features(rec.ch_types, rec.positions, rec.orientations)


def windows_of(rec, size: int, patch: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Non-overlapping windows (n, C, size) of a prepared recording and their starts (s); a
    recording shorter than one window gives one window of its whole patches."""
    if rec.n_times < size:
        size = rec.n_times // patch * patch
    if size <= 0:
        raise RecordingError(rec.source, f"{rec.duration:.2f} s is shorter than one "
                             f"{patch}-sample patch", "use a longer recording")
    starts = np.arange(0, rec.n_times - size + 1, size)
    x = np.stack([rec.data[:, s:s + size] for s in starts]).astype(np.float32)
    return x, starts / rec.sfreq, size



# ---- check a store --------------------------------------------------------------------------
def contract_differences(standardise: dict, contract: dict) -> list[str]:
    """Where a store's standardisation (``standardise``, its store.json's) and what a
    checkpoint's ``contract`` expects disagree, one ``key: store .. vs checkpoint ..`` each."""
    want = contract.get("standardise")
    if not want:
        return []
    want = StandardiseConfig.from_dict(want).as_dict()
    have = StandardiseConfig.from_dict(standardise or {}).as_dict()
    return [f"{k}: store {have.get(k)!r} vs checkpoint {want.get(k)!r}"
            for k in _MUST_AGREE if have.get(k) != want.get(k)]


def check_store_contract(store, contract: dict) -> None:
    """A store standardised otherwise than the checkpoint expects is refused, naming keys."""
    differ = contract_differences(store.meta.get("standardise"), contract)
    if differ:
        raise ContractError(f"{store.root}: the store was standardised otherwise than the "
                            f"checkpoint expects ({'; '.join(differ)}) -> pass the recordings "
                            "themselves (input=<file or folder>; they are prepared to the "
                            "checkpoint's contract) or re-prepare the store with its settings")


__all__ = ["ContractError", "ENCODINGS", "as_recording", "build_contract",
           "check_store_contract", "contract_differences", "contract_key", "corpus_contract",
           "fixed_channel_set", "interpolate_channels", "prepare_recording",
           "recording_from_raw", "recording_sensors", "select_channel_set",
           "split_channel_set", "units_of", "windows_of"]

"""Sensor geometry and the per-channel sensor features models consume.

Positions come from the file when it has plausible ones (MEG ``loc``, digitised EEG, iEEG
contacts), otherwise from a 10-05 template by electrode name. A channel with neither keeps a
NaN position and ``has_position = 0`` in its features: it is flagged, never put at the origin.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

#: Column names of the sensor feature vector (the contract in DESIGN.md).
SENSOR_FEATURES = ("x", "y", "z", "ox", "oy", "oz", "type_id", "has_position")
N_SENSOR_FEATURES = len(SENSOR_FEATURES)

#: Integer id per sensor type; 0 is reserved for padding.
SENSOR_TYPE_IDS = {"eeg": 1, "mag": 2, "grad": 3, "seeg": 4, "ecog": 5, "dbs": 6}

#: Metres that map to 1.0 per modality: a head radius for scalp and intracranial sensors, the
#: helmet radius for MEG. Fixed constants, so the same sensor has the same code in every file.
POSITION_SCALE = {"eeg": 0.095, "seeg": 0.095, "ecog": 0.095, "dbs": 0.095,
                  "mag": 0.12, "grad": 0.12}

#: Head-frame positions further than this from the origin are not positions (e.g. values in
#: millimetres or sentinel numbers written by acquisition software).
MAX_PLAUSIBLE_RADIUS_M = 0.3

DEFAULT_TEMPLATE = "fsaverage_1005"

_FIFF_COORD_DEVICE = 1
_FIFF_COORD_HEAD = 4


def positions_from_info(info) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Head-frame positions, MEG orientations and their source for every channel of ``info``.

    MEG sensors in device coordinates are moved to the head frame with ``dev_head_t`` when the
    file has it. Orientation is the coil normal (``loc[9:12]``) for magnetometers and the
    gradient direction (``loc[3:6]``) for planar gradiometers, as BrainOmni does.
    """
    n = len(info["chs"])
    pos = np.full((n, 3), np.nan, dtype=np.float64)
    ori = np.zeros((n, 3), dtype=np.float64)
    source = ["missing"] * n
    dev_head = info.get("dev_head_t")
    trans = None if dev_head is None else np.asarray(dev_head["trans"])
    types = info.get_channel_types()
    for i, (ch, kind) in enumerate(zip(info["chs"], types)):
        loc = np.asarray(ch["loc"], dtype=float)
        xyz = loc[:3]
        if not np.all(np.isfinite(xyz)) or not np.any(xyz):
            continue
        if np.linalg.norm(xyz) > MAX_PLAUSIBLE_RADIUS_M:
            source[i] = "implausible"
            continue
        if kind in ("mag", "grad"):
            normal = loc[9:12] if kind == "mag" else loc[3:6]
            frame = ch.get("coord_frame", _FIFF_COORD_HEAD)
            if frame == _FIFF_COORD_DEVICE and trans is not None:
                xyz = trans[:3, :3] @ xyz + trans[:3, 3]
                normal = trans[:3, :3] @ normal
                source[i] = "file:device->head"
            else:
                source[i] = "file"
            norm = np.linalg.norm(normal)
            ori[i] = normal / norm if norm > 0 else 0.0
        else:
            source[i] = "file"
        pos[i] = xyz
    return pos.astype(np.float32), ori.astype(np.float32), source


@lru_cache(maxsize=8)
def template_positions(montage: str = DEFAULT_TEMPLATE) -> dict[str, np.ndarray]:
    """Upper-case electrode name -> head-frame position (metres) of a built-in MNE montage."""
    import mne

    try:
        dig = mne.channels.make_standard_montage(montage)
    except ValueError as err:
        known = ", ".join(mne.channels.get_builtin_montages())
        raise ValueError(f"unknown montage {montage!r}; MNE knows: {known}") from err
    info = mne.create_info(dig.ch_names, 1000.0, "eeg")
    info.set_montage(dig, on_missing="ignore")
    return {ch["ch_name"].upper(): np.asarray(ch["loc"][:3], dtype=np.float32)
            for ch in info["chs"] if np.all(np.isfinite(ch["loc"][:3]))}


def fill_template_positions(rec, montage: str | None = DEFAULT_TEMPLATE,
                            min_match: float = 0.5):
    """Place scalp EEG channels that have no file position at their template site.

    When fewer than ``min_match`` of the recording's EEG channels carry template names, the
    names are not 10-05 names (e.g. BioSemi ``A1..D32``) and a match would be a coincidence
    (``A1`` the ear lobe): nothing is placed and every such channel stays flagged.
    """
    from .channels import canonical_10_05

    if montage is None:
        return rec
    table = template_positions(montage)
    need = [i for i, (t, s) in enumerate(zip(rec.ch_types, rec.position_source))
            if t == "eeg" and s != "file"]
    if not need:
        return rec
    eeg = [i for i, t in enumerate(rec.ch_types) if t == "eeg"]
    hits = {i: canonical_10_05(rec.ch_names[i]) for i in need}
    hits = {i: c for i, c in hits.items() if c is not None and c.upper() in table}
    matched_share = len(hits) / max(len(eeg), 1)
    if matched_share < min_match:
        rec.with_step("template_positions", montage=montage, placed=0,
                      skipped=f"only {matched_share:.0%} of EEG names are 10-05 names")
        return rec
    pos = rec.positions.copy()
    src = list(rec.position_source)
    for i, canon in hits.items():
        pos[i] = table[canon.upper()]
        src[i] = f"template:{montage}"
    out = rec.replace(positions=pos, position_source=src)
    return out.with_step("template_positions", montage=montage, placed=len(hits),
                         missing=[rec.ch_names[i] for i in need if i not in hits])


def sensor_features(ch_types, positions, orientations) -> np.ndarray:
    """(C, 8) float32: normalised xyz, orientation, type id, has-position flag.

    Missing positions give zeros in xyz *and* ``has_position = 0``, so a model can tell
    "unknown" from "at the origin".
    """
    positions = np.asarray(positions, dtype=np.float32)
    n = len(ch_types)
    out = np.zeros((n, N_SENSOR_FEATURES), dtype=np.float32)
    for i, kind in enumerate(ch_types):
        if kind not in SENSOR_TYPE_IDS:
            raise ValueError(f"channel type {kind!r} has no sensor id; neural types are "
                             f"{sorted(SENSOR_TYPE_IDS)} (pick channels before encoding)")
        known = bool(np.all(np.isfinite(positions[i])))
        if known:
            out[i, :3] = positions[i] / POSITION_SCALE[kind]
        out[i, 3:6] = orientations[i]
        out[i, 6] = SENSOR_TYPE_IDS[kind]
        out[i, 7] = float(known)
    return out

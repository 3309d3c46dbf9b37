"""Bringing data to a checkpoint, and embeddings out of it.

A loaded checkpoint carries its data contract (``model.contract``, config.json's
``contract``): the standardisation it was trained with and how it tells channels apart.
:meth:`ContractMixin.prepare` applies it to a new recording with the one standardiser brainfm
has (:func:`brainfm.data.standardise.standardise`), then, for checkpoints that know channels
by their place in a fixed montage, selects and orders the channel set by name and
interpolates what is missing from sensor positions (MNE spherical splines) when allowed.
Sensor-encoded checkpoints take any montage as it is. :meth:`ContractMixin.embed` windows a
prepared recording and pools the backbone's features into one vector per window and per
recording.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import RecordingError

#: Channel types of a scalp or intracranial electrode (potentials), vs MEG fields.
_POTENTIALS = ("eeg", "seeg", "ecog", "dbs")
_MEG = ("mag", "grad")
#: Window length when a checkpoint does not record its training windows.
DEFAULT_WINDOW_S = 5.0


@dataclass
class Embeddings:
    """Per-window embeddings (n_windows, D), their mean per recording (D,), and where each
    window lies (seconds from the recording start)."""

    windows: np.ndarray
    recording: np.ndarray
    start_s: np.ndarray
    end_s: np.ndarray
    channels: list[str] = field(default_factory=list)
    sfreq: float | None = None
    source: str = "<windows>"

    def __len__(self) -> int:
        return len(self.windows)


# ---- inputs -------------------------------------------------------------------------------
def as_recording(obj):
    """A :class:`~brainfm.data.Recording` from a Recording, an MNE Raw or a file path."""
    from ..data.recording import Recording

    if isinstance(obj, Recording):
        return obj
    try:
        import mne
    except ImportError:  # pragma: no cover - mne is a dependency
        mne = None
    if mne is not None and isinstance(obj, mne.io.BaseRaw):
        return recording_from_raw(obj)
    if isinstance(obj, (str, bytes)) or hasattr(obj, "__fspath__"):
        from ..data.readers import read_recording

        return read_recording(obj)
    raise TypeError(f"cannot prepare a {type(obj).__name__}: pass a brainfm Recording, an MNE "
                    "Raw, or a path to a recording")


def recording_from_raw(raw):
    """An MNE Raw as a brainfm Recording: SI units, file positions, canonical names."""
    from ..data.readers import finalise_channels
    from ..data.readers.mne_files import _annotations_from_raw
    from ..data.recording import Recording
    from ..data.sensors import positions_from_info

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


# ---- the contract -------------------------------------------------------------------------
def _standardise_config(contract: dict, overrides: dict):
    from ..data.standardise import StandardiseConfig

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

    from ..data.sensors import DEFAULT_TEMPLATE, template_positions

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


def _select_channel_set(rec, channels: list[str], types: list[str], donors: bool = False):
    """Before standardising: refuse what cannot be brought to a fixed montage, keep only its
    channels (and, with ``donors``, the other EEG channels with positions, to interpolate
    from). Returns (recording, names the recording lacks)."""
    have = set(rec.ch_names)
    present = [n for n in channels if n in have]
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
    missing = [n for n in channels if n not in have]
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
    from ..data.standardise import standardise

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
    channels = list(contract.get("channels") or [])
    encoding = contract.get("channel_encoding", "sensor")
    fixed = encoding != "sensor" and bool(channels)
    missing: list[str] = []
    if fixed:
        rec, missing = _select_channel_set(rec, channels, _channel_set_types(contract),
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
    import hashlib
    import json

    what = {"standardise": cfg.as_dict(), "channels": contract.get("channels"),
            "encoding": contract.get("channel_encoding", "sensor")}
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:16]


# ---- the mixin ----------------------------------------------------------------------------
class ContractMixin:
    """``prepare`` and ``embed`` for a model loaded with :func:`brainfm.from_pretrained`
    (whose ``contract`` attribute holds config.json's data contract)."""

    contract: dict
    allow_interpolation: bool = False

    def data_contract(self) -> dict:
        """config.json's data contract (built from the architecture for models made in
        Python, which have none stored)."""
        contract = getattr(self, "contract", None)
        if contract is None:
            from ..hub.config import build_contract
            from .registry import family_of

            contract = build_contract(family_of(self), dict(self.config), {})
        return contract

    def prepare(self, recording, allow_interpolation: bool | None = None, **overrides):
        """The recording (Recording, MNE Raw or path) as this checkpoint was trained to see
        data: rate, filters, units, reference; for fixed-montage checkpoints its channel set
        in order (missing channels: an error listing them, or interpolated when
        ``allow_interpolation``). ``overrides`` change single standardisation keys."""
        allow = self.allow_interpolation if allow_interpolation is None else allow_interpolation
        return prepare_recording(recording, self.data_contract(), allow, **overrides)

    def window_length(self, window_s: float | None = None) -> int:
        """Samples per window: the training window (whole patches), or ``window_s``."""
        contract = self.data_contract()
        sfreq = float(contract.get("sfreq") or self.config.get("sfreq") or 200.0)
        seconds = window_s or contract.get("window_s") or DEFAULT_WINDOW_S
        patch = int(self.patch_len)
        return max(patch, int(round(seconds * sfreq)) // patch * patch)

    @torch.no_grad()
    def pooled_features(self, x: torch.Tensor, sensors: torch.Tensor | None = None,
                        channel_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, D): the backbone's features (what the linear probe reads) averaged over real
        channels and patches; from the layer the checkpoint records as its read-out
        (:func:`recorded_readout_layer`), the last one when it records none."""
        from .adapters import get_adapter
        from .heads import masked_mean
        from .registry import family_of

        adapter = get_adapter(family_of(self))
        layer = recorded_readout_layer(self)
        if layer is None:
            feats = adapter.features(self, x, sensors, channel_mask)
        else:
            feats = adapter.layer_features(self, x, sensors, channel_mask)[layer]
        return masked_mean(feats.float(), None if channel_mask is None
                           else channel_mask.to(feats.device))

    def embed(self, recording_or_windows, batch_size: int = 32, sensors=None,
              channel_mask=None, window_s: float | None = None,
              allow_interpolation: bool | None = None, progress: bool = False) -> Embeddings:
        """Embeddings of a recording (Recording, MNE Raw, path; prepared first) cut into
        non-overlapping windows, or of windows already in model units ((B, C, T) or (B, C,
        N, P) array, with ``sensors`` (C, 8) or (B, C, 8) for sensor-encoded models)."""
        from ..data.recording import Recording

        if isinstance(recording_or_windows, (np.ndarray, torch.Tensor)):
            x = torch.as_tensor(np.asarray(recording_or_windows, dtype=np.float32)
                                if isinstance(recording_or_windows, np.ndarray)
                                else recording_or_windows.float())
            if x.dim() == 2:
                x = x[None]
            if x.dim() == 4:
                x = x.flatten(2)
            if sensors is not None:
                sensors = torch.as_tensor(np.asarray(sensors, dtype=np.float32))
                if sensors.dim() == 2:
                    sensors = sensors[None].expand(x.shape[0], -1, -1)
            n = x.shape[-1]
            sfreq = float(self.data_contract().get("sfreq") or 200.0)
            vecs = self._embed_batches(x, sensors, channel_mask, batch_size, progress)
            starts = np.arange(len(x)) * n / sfreq
            return Embeddings(vecs, vecs.mean(axis=0), starts, starts + n / sfreq, sfreq=sfreq)
        rec = self.prepare(recording_or_windows, allow_interpolation)
        assert isinstance(rec, Recording)
        x, starts, size = windows_of(rec, self.window_length(window_s), int(self.patch_len))
        sens = torch.from_numpy(recording_sensors(rec))[None].expand(len(x), -1, -1)
        vecs = self._embed_batches(torch.from_numpy(x), sens, None, batch_size, progress)
        return Embeddings(vecs, vecs.mean(axis=0), starts, starts + size / rec.sfreq,
                          channels=list(rec.ch_names), sfreq=rec.sfreq, source=rec.source)

    def _embed_batches(self, x, sensors, channel_mask, batch_size, progress) -> np.ndarray:
        from ..progress import progress_bar

        device = next(self.parameters()).device
        was_training = self.training
        self.eval()
        out = []
        bar = progress_bar(len(x), "brainfm embed", enabled=progress, unit="window")
        try:
            for s in range(0, len(x), batch_size):
                xb = x[s:s + batch_size].to(device)
                sb = None if sensors is None else sensors[s:s + batch_size].to(device)
                mb = None if channel_mask is None else channel_mask[s:s + batch_size].to(device)
                out.append(self.pooled_features(xb, sb, mb).cpu().numpy())
                bar.update(len(xb))
        finally:
            bar.close()
            self.train(was_training)
        width = out[0].shape[1] if out else 0
        return np.concatenate(out) if out else np.zeros((0, width), np.float32)


def readout_layer_of(extra: dict | None) -> int | None:
    """The layer a checkpoint's pretraining recorded as its read-out (``training.readout.
    layer`` of its metadata, ``extra``: chosen on validation subjects), or None for the last
    layer."""
    readout = ((extra or {}).get("training") or {}).get("readout") or {}
    layer = readout.get("layer")
    return None if layer is None else int(layer)


def recorded_readout_layer(model) -> int | None:
    """:func:`readout_layer_of` a loaded model's metadata (``model.extra``)."""
    return readout_layer_of(getattr(model, "extra", None))


def recording_sensors(rec) -> np.ndarray:
    from ..data.sensors import sensor_features

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


__all__ = ["ContractMixin", "Embeddings", "as_recording", "interpolate_channels",
           "prepare_recording", "recording_from_raw", "windows_of"]

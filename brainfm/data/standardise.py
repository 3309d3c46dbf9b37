"""Standardisation: one preprocessing contract for every recording a model sees.

Order matters for speed, not for the result: resampling comes before filtering whenever the
target rate is lower (its anti-alias filter already removes what lies above the new Nyquist,
so filtering afterwards touches fewer samples), notch and band-pass run as one zero-phase
pass, and the float64 arithmetic the filters need happens on blocks of channels so that no
float64 copy of a whole recording ever exists. Every step and its parameters go into the
recording's provenance.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from fractions import Fraction

import numpy as np
from scipy import signal

from ..errors import RecordingError
from .channels import NEURAL_TYPES
from .recording import Recording

#: SI -> conventional physical unit (uV for electric potentials, fT and fT/cm for MEG).
PHYSICAL_UNIT = {"eeg": ("uV", 1e6), "seeg": ("uV", 1e6), "ecog": ("uV", 1e6),
                 "dbs": ("uV", 1e6), "eog": ("uV", 1e6), "ecg": ("uV", 1e6),
                 "emg": ("uV", 1e6), "mag": ("fT", 1e15), "grad": ("fT/cm", 1e13)}

#: Channels per float64 work block; bounds scratch memory at a few x block x n_times x 8 bytes.
_BLOCK_CHANNELS = 2


@dataclass
class StandardiseConfig:
    """Parameters of :func:`standardise`; mirrors ``conf/standardise/*.yaml``.

    ``scale`` divides each type's physical unit (uV, fT, fT/cm) so that typical signals are of
    order one: CBraMod trains on units of 100 uV.
    """

    pick_types: tuple[str, ...] = NEURAL_TYPES
    exclude: tuple[str, ...] = ()
    reference: str = "none"                 # "none" | "average"
    l_freq: float | None = 0.3
    h_freq: float | None = 75.0
    filter_order: int = 4                   # Butterworth order per direction (zero-phase)
    notch: float | None = 50.0              # mains frequency, or None
    notch_q: float = 30.0
    sfreq: float | None = 200.0
    scale: dict = field(default_factory=lambda: {
        "eeg": 100.0, "seeg": 100.0, "ecog": 100.0, "dbs": 100.0, "mag": 1000.0,
        "grad": 1000.0})
    flat_std: float = 0.05                  # physical units (uV/fT): below this a channel is flat
    bad_channel_z: float | None = 6.0       # robust z of log-std; None disables detection
    bad_channels: str = "mark"              # "mark" keeps them listed, "drop" removes them

    @classmethod
    def from_dict(cls, cfg) -> "StandardiseConfig":
        cfg = dict(cfg or {})
        unknown = set(cfg) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown standardise option(s) {sorted(unknown)}; "
                             f"known: {sorted(cls.__dataclass_fields__)}")
        for key in ("pick_types", "exclude"):
            if key in cfg and cfg[key] is not None:
                cfg[key] = tuple(cfg[key])
        if "scale" in cfg:
            cfg["scale"] = {**cls().scale, **dict(cfg["scale"])}
        out = cls(**cfg)
        out.validate()
        return out

    def validate(self) -> None:
        if self.reference not in ("none", "average"):
            raise ValueError(f"reference={self.reference!r}; use 'none' or 'average'")
        if self.bad_channels not in ("mark", "drop"):
            raise ValueError(f"bad_channels={self.bad_channels!r}; use 'mark' or 'drop'")
        if self.l_freq is not None and self.h_freq is not None and self.l_freq >= self.h_freq:
            raise ValueError(f"l_freq={self.l_freq} must be below h_freq={self.h_freq}")

    def as_dict(self) -> dict:
        return asdict(self)


def _resample_plan(orig: float, target: float) -> tuple[int, int] | None:
    """Exact up/down integers for polyphase resampling, or None when they are too large."""
    frac = Fraction(target / orig).limit_denominator(2000)
    if abs(float(frac) * orig - target) > 1e-6 * target or max(frac.numerator,
                                                                frac.denominator) > 1000:
        return None
    return frac.numerator, frac.denominator


def _resample(data: np.ndarray, orig: float, target: float) -> tuple[np.ndarray, str]:
    plan = _resample_plan(orig, target)
    n_out = int(round(data.shape[1] * target / orig))
    out = np.empty((data.shape[0], n_out), dtype=np.float32)
    for s in range(0, data.shape[0], _BLOCK_CHANNELS):
        block = data[s:s + _BLOCK_CHANNELS].astype(np.float64)
        if plan is not None:
            res = signal.resample_poly(block, plan[0], plan[1], axis=1)
        else:  # awkward ratio (173.61 -> 200 Hz): band-limited FFT resampling
            res = signal.resample(block, n_out, axis=1)
        out[s:s + _BLOCK_CHANNELS] = res[:, :n_out]
    method = f"polyphase up={plan[0]} down={plan[1]}" if plan else "fft"
    return out, method


def _filter_sos(cfg: StandardiseConfig, sfreq: float) -> tuple[np.ndarray | None, dict]:
    """One cascade of second-order sections: band-pass (or high/low-pass) then notch."""
    sections, done = [], {}
    nyq = sfreq / 2.0
    if cfg.l_freq is not None and cfg.h_freq is not None:
        sections.append(signal.butter(cfg.filter_order, [cfg.l_freq, cfg.h_freq], "bandpass",
                                      fs=sfreq, output="sos"))
        done["bandpass"] = [cfg.l_freq, cfg.h_freq]
    elif cfg.l_freq is not None:
        sections.append(signal.butter(cfg.filter_order, cfg.l_freq, "highpass", fs=sfreq,
                                      output="sos"))
        done["highpass"] = cfg.l_freq
    elif cfg.h_freq is not None:
        sections.append(signal.butter(cfg.filter_order, cfg.h_freq, "lowpass", fs=sfreq,
                                      output="sos"))
        done["lowpass"] = cfg.h_freq
    if cfg.notch is not None:
        if cfg.notch < nyq:
            b, a = signal.iirnotch(cfg.notch, cfg.notch_q, fs=sfreq)
            sections.append(signal.tf2sos(b, a))
            done["notch"] = cfg.notch
        else:
            done["notch_skipped"] = f"{cfg.notch} Hz is above the Nyquist frequency {nyq:g} Hz"
    if not sections:
        return None, done
    return np.concatenate(sections, axis=0), done


def _apply_sos(data: np.ndarray, sos: np.ndarray) -> None:
    """Zero-phase filtering in place, float64 arithmetic one block of channels at a time."""
    pad = min(3 * (2 * len(sos) + 1) * 10, data.shape[1] - 1)
    for s in range(0, data.shape[0], _BLOCK_CHANNELS):
        block = data[s:s + _BLOCK_CHANNELS].astype(np.float64)
        data[s:s + _BLOCK_CHANNELS] = signal.sosfiltfilt(sos, block, axis=1, padlen=pad)


def _median_removed_scaled(data: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """A float32 copy with each channel's median removed and its unit factor applied."""
    out = np.empty(data.shape, dtype=np.float32)
    for s in range(0, data.shape[0], _BLOCK_CHANNELS):
        block = data[s:s + _BLOCK_CHANNELS].astype(np.float64)
        block -= np.median(block, axis=1, keepdims=True)
        block *= factors[s:s + _BLOCK_CHANNELS, None]
        out[s:s + _BLOCK_CHANNELS] = block
    return out


def _row_std(data: np.ndarray) -> np.ndarray:
    """Per-channel standard deviation without a temporary the size of the recording."""
    return np.concatenate([data[s:s + _BLOCK_CHANNELS].std(axis=1, dtype=np.float64)
                           for s in range(0, data.shape[0], _BLOCK_CHANNELS)]
                          ).astype(np.float32)


def _robust_z(values: np.ndarray) -> np.ndarray:
    med = np.median(values)
    mad = np.median(np.abs(values - med)) * 1.4826
    return (values - med) / mad if mad > 0 else np.zeros_like(values)


def standardise(rec: Recording, cfg: StandardiseConfig | dict | None = None) -> Recording:
    """Pick, check, convert units, resample, filter, re-reference and vet the channels.

    Returns a new float32 recording in units of ``scale`` x physical unit per type. Raises
    :class:`~brainfm.errors.RecordingError` naming the file and channel for NaN/Inf samples,
    no usable channels, only flat channels, or a sampling rate too low for the band-pass.
    """
    if not isinstance(cfg, StandardiseConfig):
        cfg = StandardiseConfig.from_dict(cfg)
    # 1. picks
    keep = [i for i, (n, t) in enumerate(zip(rec.ch_names, rec.ch_types))
            if t in cfg.pick_types and n not in cfg.exclude]
    if not keep:
        raise RecordingError(rec.source, f"no channels of types {list(cfg.pick_types)} "
                             f"(the file has {rec.type_counts()})",
                             "set standardise.pick_types, or ch_types overrides when reading")
    out = rec.pick(keep)
    out.with_step("pick", types=list(cfg.pick_types), exclude=list(cfg.exclude),
                  kept=len(keep), dropped=[n for i, n in enumerate(rec.ch_names)
                                           if i not in set(keep)])
    # 2. finite samples
    bad_rows = ~np.isfinite(out.data).all(axis=1)
    if bad_rows.any():
        names = [n for n, b in zip(out.ch_names, bad_rows) if b]
        raise RecordingError(rec.source, f"NaN or Inf samples in channel(s) {names}",
                             "exclude those channels (standardise.exclude) or repair the file")
    # 3. sampling rate vs requested band
    target = float(cfg.sfreq) if cfg.sfreq else out.sfreq
    top = cfg.h_freq if cfg.h_freq is not None else cfg.l_freq
    if top is not None:
        for rate, what in ((out.sfreq, "recording"), (target, "target")):
            if top >= rate / 2:
                raise RecordingError(
                    rec.source, f"{what} rate {rate:g} Hz is too low for a {top:g} Hz filter "
                    f"edge (Nyquist {rate / 2:g} Hz)",
                    f"lower standardise.h_freq below {rate / 2:g} Hz or skip this recording")
    # 4. DC removal and units: one multiply per channel
    factors = np.empty(out.n_channels, dtype=np.float32)
    units = []
    for i, kind in enumerate(out.ch_types):
        unit, si_to_unit = PHYSICAL_UNIT.get(kind, ("uV", 1e6))
        scale = float(cfg.scale.get(kind, 1.0))
        factors[i] = si_to_unit / scale
        units.append(f"{scale:g} {unit}" if scale != 1 else unit)
    out.data = _median_removed_scaled(out.data, factors)
    out.units = units
    out.with_step("units", units=sorted(set(units)), dc="median removed")
    # 5. flat channels: dropped, and an error if nothing is left
    stds = _row_std(out.data) * np.array(
        [float(cfg.scale.get(t, 1.0)) for t in out.ch_types], dtype=np.float32)
    flat = stds < cfg.flat_std
    if flat.all():
        raise RecordingError(rec.source, f"all {out.n_channels} channels are flat "
                             f"(std < {cfg.flat_std} physical units)",
                             "check the recording; it carries no signal")
    if flat.any():
        flat_names = [n for n, f in zip(out.ch_names, flat) if f]
        out = out.pick(np.flatnonzero(~flat))
        out.with_step("flat_channels", dropped=flat_names)
    # 6. resample and filter, cheapest order first
    downsampling = target < out.sfreq
    if not downsampling and target != out.sfreq:
        out = _filter_step(out, cfg)
    if target != out.sfreq:
        orig = out.sfreq
        data, method = _resample(out.data, orig, target)
        scale_t = target / orig
        ann = out.annotations
        out = out.replace(data=data, sfreq=target)
        out.annotations = type(ann)(ann.onset, ann.duration, ann.description)
        out.with_step("resample", from_sfreq=orig, to_sfreq=target, method=method,
                      ratio=round(scale_t, 6))
    if downsampling or target == rec.sfreq:
        out = _filter_step(out, cfg)
    # 7. reference
    if cfg.reference == "average":
        for kind in sorted(set(out.ch_types)):
            rows = [i for i, t in enumerate(out.ch_types) if t == kind and
                    out.ch_names[i] not in out.bads]
            if rows and kind in ("eeg", "seeg", "ecog", "dbs"):
                out.data[rows] -= out.data[rows].mean(axis=0, keepdims=True)
        out.with_step("reference", kind="average", per_type=True)
    # 8. noisy channels
    if cfg.bad_channel_z is not None and out.n_channels >= 4:
        logstd = np.log(_row_std(out.data) + 1e-12)
        noisy = [out.ch_names[i] for i in np.flatnonzero(
            np.abs(_robust_z(logstd)) > cfg.bad_channel_z)]
        if noisy:
            if cfg.bad_channels == "drop":
                out = out.pick([i for i, n in enumerate(out.ch_names) if n not in noisy])
            else:
                out.bads = sorted(set(out.bads) | set(noisy))
        out.with_step("bad_channels", z=cfg.bad_channel_z, found=noisy,
                      action=cfg.bad_channels)
    return out


def _filter_step(rec: Recording, cfg: StandardiseConfig) -> Recording:
    sos, done = _filter_sos(cfg, rec.sfreq)
    if sos is not None and rec.n_times > 3 * (2 * len(sos) + 1):
        _apply_sos(rec.data, sos)
        rec.with_step("filter", design=f"butterworth order {cfg.filter_order} + iirnotch "
                      f"q={cfg.notch_q}, zero-phase sos", at_sfreq=rec.sfreq, **done)
    return rec

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
from functools import lru_cache

import numpy as np
from scipy import signal

from ..errors import RecordingError
from .channels import NEURAL_TYPES
from .recording import Recording

#: SI -> conventional physical unit (uV for electric potentials, fT and fT/cm for MEG).
PHYSICAL_UNIT = {"eeg": ("uV", 1e6), "seeg": ("uV", 1e6), "ecog": ("uV", 1e6),
                 "dbs": ("uV", 1e6), "eog": ("uV", 1e6), "ecg": ("uV", 1e6),
                 "emg": ("uV", 1e6), "mag": ("fT", 1e15), "grad": ("fT/cm", 1e13)}

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
    rescale: float | None = None            # median channel std to rescale each recording to
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


#: Float64 scratch per work block: at least this many bytes, or an eighth of the recording.
_BLOCK_MIN_BYTES = 4 << 20


def _block_channels(n_channels: int, n_times: int) -> int:
    """Channels per float64 work block: all of a short recording, few of a long one."""
    budget = max(_BLOCK_MIN_BYTES, n_channels * n_times * 4 // 8)
    return int(min(n_channels, max(1, budget // max(n_times * 8, 1))))


def _resample_plan(orig: float, target: float) -> tuple[int, int] | None:
    """Exact up/down integers for polyphase resampling, or None when they are too large."""
    frac = Fraction(target / orig).limit_denominator(2000)
    if abs(float(frac) * orig - target) > 1e-6 * target or max(frac.numerator,
                                                                frac.denominator) > 1000:
        return None
    return frac.numerator, frac.denominator


def _resample_block(block: np.ndarray, orig: float, target: float, n_out: int) -> np.ndarray:
    plan = _resample_plan(orig, target)
    if plan is not None:
        return signal.resample_poly(block, plan[0], plan[1], axis=1)[:, :n_out]
    return signal.resample(block, n_out, axis=1)  # awkward ratio (173.61 -> 200 Hz): FFT


@lru_cache(maxsize=64)
def _filter_design(l_freq, h_freq, order, notch, notch_q, sfreq):
    """Second-order sections (band-pass, then notch), their steady-state state, and a log."""
    sections, done = [], {}
    nyq = sfreq / 2.0
    if l_freq is not None and h_freq is not None:
        sections.append(signal.butter(order, [l_freq, h_freq], "bandpass", fs=sfreq,
                                      output="sos"))
        done["bandpass"] = [l_freq, h_freq]
    elif l_freq is not None:
        sections.append(signal.butter(order, l_freq, "highpass", fs=sfreq, output="sos"))
        done["highpass"] = l_freq
    elif h_freq is not None:
        sections.append(signal.butter(order, h_freq, "lowpass", fs=sfreq, output="sos"))
        done["lowpass"] = h_freq
    if notch is not None:
        if notch < nyq:
            b, a = signal.iirnotch(notch, notch_q, fs=sfreq)
            sections.append(signal.tf2sos(b, a))
            done["notch"] = notch
        else:
            done["notch_skipped"] = f"{notch} Hz is above the Nyquist frequency {nyq:g} Hz"
    if not sections:
        return None, None, done
    sos = np.concatenate(sections, axis=0)
    return sos, signal.sosfilt_zi(sos), done


def sos_filtfilt(sos: np.ndarray, zi: np.ndarray, x: np.ndarray, padlen: int) -> np.ndarray:
    """Zero-phase filtering of rows of ``x`` (what scipy's ``sosfiltfilt`` computes).

    Takes the steady-state initial conditions ``zi`` (``sosfilt_zi(sos)``) precomputed, so
    a prep job designs its filter once instead of once per channel block.
    """
    padlen = min(padlen, x.shape[1] - 1)
    if padlen > 0:
        left = 2 * x[:, :1] - x[:, padlen:0:-1]
        right = 2 * x[:, -1:] - x[:, -2:-padlen - 2:-1]
        x = np.concatenate([left, x, right], axis=1)
    y, _ = signal.sosfilt(sos, x, axis=1, zi=zi[:, None, :] * x[None, :, :1])
    y = y[:, ::-1]
    y, _ = signal.sosfilt(sos, y, axis=1, zi=zi[:, None, :] * y[None, :, :1])
    y = y[:, ::-1]
    return y[:, padlen:y.shape[1] - padlen] if padlen > 0 else y


def _robust_z(values: np.ndarray) -> np.ndarray:
    med = np.median(values)
    mad = np.median(np.abs(values - med)) * 1.4826
    return (values - med) / mad if mad > 0 else np.zeros_like(values)


def _row_std(data: np.ndarray) -> np.ndarray:
    """Per-channel standard deviation without a temporary the size of the recording."""
    step = _block_channels(*data.shape)
    return np.concatenate([data[s:s + step].std(axis=1, dtype=np.float64)
                           for s in range(0, data.shape[0], step)]).astype(np.float32)


def standardise(rec: Recording, cfg: StandardiseConfig | dict | None = None) -> Recording:
    """Pick, check, convert units, resample, filter, re-reference and vet the channels.

    Returns a new float32 recording in units of ``scale`` x physical unit per type. Raises
    :class:`~brainfm.errors.RecordingError` naming the file and channel for NaN/Inf samples,
    no usable channels, only flat channels, or a sampling rate too low for the band-pass.

    Units, DC removal, resampling and filtering happen in one pass over blocks of channels
    (float64 arithmetic per block), so the recording is traversed once.
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
    kept = set(keep)
    src = rec.pick(keep)
    src.with_step("pick", types=list(cfg.pick_types), exclude=list(cfg.exclude),
                  kept=len(keep), dropped=[n for i, n in enumerate(rec.ch_names)
                                           if i not in kept])
    # 2. finite samples
    bad_rows = ~np.isfinite(src.data).all(axis=1)
    if bad_rows.any():
        names = [n for n, b in zip(src.ch_names, bad_rows) if b]
        raise RecordingError(rec.source, f"NaN or Inf samples in channel(s) {names}",
                             "exclude those channels (standardise.exclude) or repair the file")
    # 3. sampling rate vs requested band
    orig = src.sfreq
    target = float(cfg.sfreq) if cfg.sfreq else orig
    top = cfg.h_freq if cfg.h_freq is not None else cfg.l_freq
    if top is not None:
        for rate, what in ((orig, "recording"), (target, "target")):
            if top >= rate / 2:
                raise RecordingError(
                    rec.source, f"{what} rate {rate:g} Hz is too low for a {top:g} Hz filter "
                    f"edge (Nyquist {rate / 2:g} Hz)",
                    f"lower standardise.h_freq below {rate / 2:g} Hz or skip this recording")
    # 4. one pass: units and DC, then resample/filter in the cheaper order
    factors, scales, units = [], [], []
    for kind in src.ch_types:
        unit, si_to_unit = PHYSICAL_UNIT.get(kind, ("uV", 1e6))
        scale = float(cfg.scale.get(kind, 1.0))
        factors.append(si_to_unit / scale)
        scales.append(scale)
        units.append(f"{scale:g} {unit}" if scale != 1 else unit)
    factors, scales = np.asarray(factors), np.asarray(scales)
    resampling = target != orig
    downsampling = target < orig
    n_out = int(round(src.n_times * target / orig)) if resampling else src.n_times
    filter_rate = target if downsampling else orig
    sos, zi, done = _filter_design(cfg.l_freq, cfg.h_freq, cfg.filter_order, cfg.notch,
                                   cfg.notch_q, float(filter_rate))
    n_filter = n_out if downsampling else src.n_times
    filtering = sos is not None and n_filter > 3 * (2 * len(sos) + 1)
    padlen = 3 * (2 * len(sos) + 1) * 10 if sos is not None else 0
    data = np.empty((src.n_channels, n_out), dtype=np.float32)
    physical_std = np.empty(src.n_channels)
    step = _block_channels(src.n_channels, max(src.n_times, n_out))
    for s in range(0, src.n_channels, step):
        block = src.data[s:s + step].astype(np.float64)
        block -= block.mean(axis=1, keepdims=True)
        block *= factors[s:s + step, None]
        # the block is zero-mean: its variance is a row-wise dot product
        physical_std[s:s + step] = np.sqrt(np.einsum("ij,ij->i", block, block)
                                           / block.shape[1]) * scales[s:s + step]
        if downsampling:
            block = _resample_block(block, orig, target, n_out)
        if filtering:
            block = sos_filtfilt(sos, zi, block, padlen)
        if resampling and not downsampling:
            block = _resample_block(block, orig, target, n_out)
        data[s:s + step] = block
    out = src.replace(data=data, sfreq=target, units=units)
    out.with_step("units", units=sorted(set(units)), dc="mean removed")
    steps = [("resample", {"from_sfreq": orig, "to_sfreq": target,
                           "method": (lambda p: f"polyphase up={p[0]} down={p[1]}" if p
                                      else "fft")(_resample_plan(orig, target))})] \
        if resampling else []
    if filtering:
        filt = ("filter", {"design": f"butterworth order {cfg.filter_order} + iirnotch "
                           f"q={cfg.notch_q}, zero-phase sos", "at_sfreq": filter_rate, **done})
        steps = steps + [filt] if downsampling else [filt] + steps
    for name, params in steps:
        out.with_step(name, **params)
    # 5. flat channels: dropped, and an error if nothing is left
    flat = physical_std < cfg.flat_std
    if flat.all():
        raise RecordingError(rec.source, f"all {out.n_channels} channels are flat "
                             f"(std < {cfg.flat_std} physical units)",
                             "check the recording; it carries no signal")
    if flat.any():
        flat_names = [n for n, f in zip(out.ch_names, flat) if f]
        out = out.pick(np.flatnonzero(~flat))
        out.with_step("flat_channels", dropped=flat_names)
    # 6. rescale: for sources whose stored units cannot be trusted (documented per dataset)
    if cfg.rescale is not None:
        typical = float(np.median(_row_std(out.data)))
        factor = cfg.rescale / typical if typical > 0 else 1.0
        out.data *= np.float32(factor)
        out.with_step("rescale", median_channel_std=typical, factor=factor,
                      target=cfg.rescale)
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

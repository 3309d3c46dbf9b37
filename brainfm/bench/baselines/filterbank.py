"""Band-limited classical baselines: each paradigm's standard pipeline on its own band.

The backbone sees the store's 0.3-75 Hz broadband signal; the field's classical pipelines do
not: CSP works on the mu/beta band, SSVEP decoders on the stimulation frequencies and their
harmonics. Each baseline here band-passes the store's windows itself (a fixed zero-phase
Butterworth filter, fitted on nothing, so no leakage) and declares its band; the window is
the store's (:func:`declared_band`).

- ``psd_lr``: log power spectrum 5-45 Hz (Welch) + logistic regression (SSVEP);
- ``fb_ts_lr``: filter-bank OAS covariances, tangent space per band, logistic regression;
- ``fbcsp_lda``: filter-bank CSP (log-variance per band) + shrinkage LDA (Ang et al. 2008,
  without the mutual-information selection: shrinkage copes with 4 x n_bands features);
- ``csp_lda`` (in :mod:`.classical`) filters to 8-30 Hz by default through :class:`BandPass`;
- ``fbcca`` (filter-bank CCA, Chen et al. 2015) is :class:`.classical.SSVEPCCA` with bands.
"""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.pipeline import FeatureUnion, Pipeline

from .steps import QuietCSP, balanced_logistic, float64_windows

MU_BETA = (8.0, 30.0)
# 4 Hz-wide bands from 4 to 40 Hz, as in filter-bank CSP
FBCSP_BANDS = tuple((lo, lo + 4.0) for lo in range(4, 40, 4))
# rhythm bands for filter-bank covariances: theta, alpha, low and high beta, low gamma
RHYTHM_BANDS = ((4.0, 8.0), (8.0, 13.0), (13.0, 20.0), (20.0, 30.0), (30.0, 45.0))
# SSVEP stimulation frequencies (13, 17, 21 Hz) and harmonics, split as sub-bands
SSVEP_BANDS = ((11.0, 15.0), (15.0, 19.0), (19.0, 23.0), (25.0, 35.0), (35.0, 45.0))
# filter-bank CCA: sub-band m from 8m Hz up to below the store's 75 Hz low-pass
FBCCA_BANDS = tuple((8.0 * m, 74.0) for m in range(1, 6))


class BandPass(TransformerMixin, BaseEstimator):
    """Zero-phase Butterworth band-pass of (windows, channels, times); stateless."""

    stateless = True  # the benchmark filters a dataset once, not per fold

    def __init__(self, band=MU_BETA, sfreq: float = 200.0, order: int = 4):
        self.band, self.sfreq, self.order = band, sfreq, order

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        from scipy.signal import butter, sosfiltfilt

        lo, hi = (float(f) for f in self.band)
        if not 0 < lo < hi < self.sfreq / 2:
            raise ValueError(f"band {lo}-{hi} Hz must lie inside (0, {self.sfreq / 2:g}) Hz "
                             f"at {self.sfreq:g} Hz; choose a band below Nyquist")
        sos = butter(self.order, [lo, hi], "bandpass", fs=self.sfreq, output="sos")
        return sosfiltfilt(sos, float64_windows(X), axis=-1)


class LogPSD(TransformerMixin, BaseEstimator):
    """Log10 Welch power per channel and frequency bin inside ``band``, flattened; stateless.

    A window's amplitude spectrum does not depend on the stimulus phase, which an SSVEP
    window (not phase-locked to its start) does not keep.
    """

    stateless = True  # the benchmark computes it once per dataset, not per fold

    def __init__(self, sfreq: float = 200.0, band=(5.0, 45.0), seg_s: float = 2.0):
        self.sfreq, self.band, self.seg_s = sfreq, band, seg_s

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        from scipy.signal import welch

        X = float64_windows(X)
        nperseg = min(X.shape[-1], int(round(self.seg_s * self.sfreq)))
        freqs, psd = welch(X, fs=self.sfreq, nperseg=nperseg, axis=-1)
        keep = (freqs >= self.band[0]) & (freqs <= self.band[1])
        if not keep.any():
            raise ValueError(f"band {self.band} Hz holds no Welch bin at {self.sfreq} Hz")
        return np.log10(psd[..., keep] + 1e-12).reshape(len(X), -1)


def psd_lr(sfreq: float = 200.0, band=(5.0, 45.0), C: float = 1.0) -> Pipeline:
    """Log-PSD (``band``, 0.5 Hz bins) + scaled class-balanced logistic regression."""
    from sklearn.preprocessing import StandardScaler

    return Pipeline([("psd", LogPSD(sfreq=sfreq, band=tuple(band))),
                     ("scale", StandardScaler()), ("lr", balanced_logistic(C=C))])


def _per_band(make_branch, bands, sfreq: float) -> FeatureUnion:
    """One branch per band: band-pass, then ``make_branch()``, features side by side."""
    return FeatureUnion([(f"{lo:g}-{hi:g}Hz", Pipeline([("band", BandPass((lo, hi), sfreq)),
                                                         *make_branch()]))
                         for lo, hi in bands])


def fb_ts_lr(sfreq: float = 200.0, bands=None, C: float = 1.0, paradigm: str = "rhythm"
             ) -> Pipeline:
    """Filter-bank covariances: per band OAS covariance -> tangent space at the training
    mean; all bands' vectors scaled, then a class-balanced logistic regression.
    ``bands`` default to the paradigm's: ``rhythm`` (theta to low gamma) or ``ssvep``."""
    from pyriemann.estimation import Covariances
    from pyriemann.tangentspace import TangentSpace
    from sklearn.preprocessing import StandardScaler

    if bands is None:
        bands = {"rhythm": RHYTHM_BANDS, "ssvep": SSVEP_BANDS}[paradigm]
    union = _per_band(lambda: [("cov", Covariances(estimator="oas")),
                               ("ts", TangentSpace(metric="riemann"))], bands, sfreq)
    return Pipeline([("bank", union), ("scale", StandardScaler()),
                     ("lr", balanced_logistic(C=C))])


def fbcsp_lda(sfreq: float = 200.0, bands=FBCSP_BANDS, n_components: int = 4) -> Pipeline:
    """Filter-bank CSP: per band, Ledoit-Wolf CSP log-variance; shrinkage LDA on all bands."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    union = _per_band(lambda: [("csp", QuietCSP(n_components=n_components, reg="ledoit_wolf",
                                                log=True, norm_trace=False, rank="full"))],
                      bands, sfreq)
    return Pipeline([("bank", union),
                     ("lda", LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto"))])


def declared_band(estimator) -> str:
    """The band(s) a fitted or unfitted baseline reads, for tables: ``"8-30 Hz"``,
    ``"9 bands 4-40 Hz"``, or ``"broadband"`` (the store's own band-pass)."""
    bands = []
    for _, step in getattr(estimator, "steps", [("", estimator)]):
        if isinstance(step, FeatureUnion):
            bands += [tuple(b.steps[0][1].band) for _, b in step.transformer_list]
        elif isinstance(step, (BandPass, LogPSD)):
            bands.append(tuple(step.band))
        elif getattr(step, "bands", None):  # a list of bands, or name -> band (BandPower)
            named = isinstance(step.bands, dict)
            bands += [tuple(b) for b in (step.bands.values() if named else step.bands)]
    if not bands:
        return "broadband"
    if len(bands) == 1:
        return f"{bands[0][0]:g}-{bands[0][1]:g} Hz"
    lo, hi = min(b[0] for b in bands), max(b[1] for b in bands)
    return f"{len(bands)} bands {lo:g}-{hi:g} Hz"

"""Classical EEG pipelines: the per-paradigm baselines every learned model is compared with.

Every baseline is a scikit-learn estimator taking ``X`` of shape (windows, channels, times)
and integer labels ``y``, with ``predict`` and ``predict_proba`` (the CCA classifier's
training-free read-out has ``decision_function`` instead), so that the same protocol loop
and metrics score them and the foundation models alike.

- ``csp_lda``: CSP log-variance features + LDA (MNE) on the mu/beta band (8-30 Hz), the
  oscillatory-task standard;
- ``ts_lr``: OAS covariances, Riemannian tangent space, logistic regression (pyRiemann);
- ``xdawn_lr``: xDAWN-augmented covariances, tangent space, logistic regression
  (pyRiemann), the ERP standard;
- ``cca``: canonical correlation with sine/cosine references per stimulation frequency,
  the SSVEP standard (implemented here; see :class:`SSVEPCCA` for the rest class);
- ``bandpower_lr``: log band power (Welch) + logistic regression, for single-channel data
  where CSP and covariances have nothing to work with;
- ``fbcca``, ``psd_lr``, ``fb_ts_lr``, ``fbcsp_lda``: filter-bank and spectral baselines
  (:mod:`.filterbank`), each on its declared band.

Every logistic regression is class-balanced (balanced accuracy is the headline metric).
Everything data-dependent is fitted in ``fit``: run them through a protocol split
(:func:`evaluate_baseline`) and only training rows are ever seen before testing.
"""
from __future__ import annotations

import re
import time

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.metaestimators import available_if

from ...data.datasets import PARADIGMS, DatasetSpec
from ..metrics import classification_metrics
from .filterbank import FBCCA_BANDS, BandPass, fb_ts_lr, fbcsp_lda, psd_lr
from .steps import QuietCSP, as_float64, balanced_logistic, float64_step, float64_windows

BANDS = {"delta": (0.5, 4.0), "theta": (4.0, 8.0), "alpha": (8.0, 13.0),
         "beta": (13.0, 30.0), "gamma": (30.0, 70.0)}  # gamma stops below the 75 Hz low-pass


# ---------------------------------------------------------------------------------------------
# data


def arrays_from_store(dataset, rows=None, chunk: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Windows ``rows`` of a :class:`~brainfm.data.loading.WindowDataset` as plain arrays.

    Returns ``X`` (n, C, T) float32 and ``y`` (n,) int64, in the order of ``rows`` (all rows
    by default). Classical pipelines need one channel set and one length, so rows of
    several shapes (mixed datasets) are refused rather than padded: zero-padded channels
    would make every covariance singular.
    """
    rows = np.arange(len(dataset)) if rows is None else np.asarray(rows, dtype=np.int64)
    if not len(rows):
        raise ValueError("no rows to load")
    shapes = set(zip(dataset.channel_keys()[rows].tolist(), dataset.shape_keys()[rows].tolist()))
    if len(shapes) != 1:
        raise ValueError(f"rows hold windows of several (channels, samples) shapes "
                         f"{sorted(shapes)}; load one dataset (one montage, one length) at a "
                         "time")
    (n_ch, n_t), = shapes
    X = np.empty((len(rows), n_ch, n_t), dtype=np.float32)
    y = np.empty(len(rows), dtype=np.int64)
    where = {int(r): i for i, r in enumerate(rows)}
    if len(where) != len(rows):
        raise ValueError("rows repeat")
    for lo in range(0, len(rows), chunk):
        batch = dataset.load_batch(rows[lo:lo + chunk])
        at = np.array([where[int(r)] for r in batch["row"].tolist()])  # load_batch reorders
        X[at] = batch["x"].reshape(len(at), n_ch, n_t).numpy()
        y[at] = batch["y"].numpy()
    return X, y


# ---------------------------------------------------------------------------------------------
# multichannel pipelines (MNE, pyRiemann)


def csp_lda(n_components: int = 4, reg="ledoit_wolf", rank="full", band=(8.0, 30.0),
            sfreq: float = 200.0) -> Pipeline:
    """CSP log-variance + LDA: binary, or multiclass through MNE's mutual-information CSP.

    On ``band`` (default the mu/beta 8-30 Hz of motor and rhythm tasks; None: the store's
    broadband), band-passed per window by a fixed filter.

    Ledoit-Wolf shrinkage keeps the class covariances well conditioned for short or few
    training windows, and so full rank even for average-referenced data: ``rank="full"``
    spares MNE's rank estimate, an SVD of all training samples that costs half the fit.
    CSP filters are tied to channel order: one montage per dataset.
    """
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    first = ("float64", float64_step()) if band is None else ("band", BandPass(tuple(band), sfreq))
    return Pipeline([first,
                     ("csp", QuietCSP(n_components=n_components, reg=reg, log=True,
                                      norm_trace=False, rank=rank)),
                     ("lda", LinearDiscriminantAnalysis())])


def tangent_space_lr(C: float = 1.0) -> Pipeline:
    """OAS covariances -> tangent space at the training Riemannian mean -> scaled LR.

    The tangent-space reference point is a training statistic: fitted in ``fit`` only.
    Cross-subject without per-subject re-centring, so it measures what transfers as is.
    """
    from pyriemann.estimation import Covariances
    from pyriemann.tangentspace import TangentSpace

    return Pipeline([("float64", float64_step()), ("cov", Covariances(estimator="oas")),
                     ("ts", TangentSpace(metric="riemann")), ("scale", StandardScaler()),
                     ("lr", balanced_logistic(C=C))])


def xdawn_lr(nfilter: int = 2, C: float = 1.0) -> Pipeline:
    """xDAWN covariances (class ERP prototypes + filtered signal) -> tangent space -> LR.

    As MOABB's XDAWNCov pipelines: OAS for the short per-window matrices, the plain
    estimate for xDAWN's pooled class statistics. The LR is class-balanced because ERP
    targets are rare (about 1 in 6 for muse_p300): unweighted, it drifts towards always
    answering "non-target".
    """
    from pyriemann.estimation import XdawnCovariances
    from pyriemann.tangentspace import TangentSpace

    return Pipeline([("float64", float64_step()),
                     ("xdawn", XdawnCovariances(nfilter=nfilter, estimator="oas",
                                                xdawn_estimator="scm")),
                     ("ts", TangentSpace(metric="riemann")), ("scale", StandardScaler()),
                     ("lr", balanced_logistic(C=C))])


# ---------------------------------------------------------------------------------------------
# single channel: band power


class BandPower(TransformerMixin, BaseEstimator):
    """Log10 band power per channel and band (Welch), flattened to (n, C * n_bands).

    Stateless: nothing is learned, so it can never leak. ``bands`` maps a name to
    (low, high) Hz; the defaults are the clinical delta/theta/alpha/beta/gamma bands.
    Windows go through Welch ``chunk`` at a time: a 64-channel dataset's float64 segments
    would otherwise take gigabytes.
    """

    stateless = True  # the benchmark computes it once per dataset, not per fold

    def __init__(self, sfreq: float = 200.0, bands=None, seg_s: float = 2.0,
                 chunk: int = 128):
        self.sfreq, self.bands, self.seg_s, self.chunk = sfreq, bands, seg_s, chunk

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        if np.ndim(X) != 3:
            raise ValueError(f"X must be (windows, channels, times), got shape {np.shape(X)}")
        bands = self.bands or BANDS
        out = np.empty((len(X), X.shape[1] * len(bands)))
        for lo in range(0, len(X), self.chunk):
            out[lo:lo + self.chunk] = self._log_power(as_float64(X[lo:lo + self.chunk]), bands)
        return out

    def _log_power(self, X: np.ndarray, bands: dict) -> np.ndarray:
        from scipy.signal import welch

        nperseg = min(X.shape[-1], int(round(self.seg_s * self.sfreq)))
        freqs, psd = welch(X, fs=self.sfreq, nperseg=nperseg, axis=-1)
        df = freqs[1] - freqs[0]
        feats = []
        for name, (lo, hi) in bands.items():
            band = (freqs >= lo) & (freqs < hi)
            if not band.any():
                raise ValueError(f"band {name} ({lo}-{hi} Hz) holds no frequency bin at "
                                 f"{self.sfreq} Hz with {nperseg}-sample segments")
            feats.append(np.log10(psd[..., band].sum(-1) * df + 1e-12))
        return np.stack(feats, axis=-1).reshape(len(X), -1)


def bandpower_lr(sfreq: float = 200.0, C: float = 1.0, bands=None) -> Pipeline:
    """Log band power + scaled multinomial LR: works with one channel (epilepsy segments).

    ``bands``: name -> (low, high) Hz, default :data:`BANDS`; ``{alpha: [8, 13]}`` gives the
    posterior-alpha baseline of resting-state tasks.
    """
    bands = None if bands is None else {k: tuple(v) for k, v in dict(bands).items()}
    return make_pipeline(BandPower(sfreq=sfreq, bands=bands), StandardScaler(),
                         balanced_logistic(C=C))


# ---------------------------------------------------------------------------------------------
# SSVEP: canonical correlation analysis


def _orthonormal_basis(A: np.ndarray, rtol: float = 1e-8) -> np.ndarray:
    """Orthonormal basis of the column space of ``A`` (..., T, k), centred first.

    SVD rather than QR: a rank-deficient window (a flat or duplicated channel) would make
    QR invent an arbitrary extra direction and inflate the correlation; here null
    directions become zero columns, which add nothing.
    """
    A = A - A.mean(axis=-2, keepdims=True)
    U, s, _ = np.linalg.svd(A, full_matrices=False)
    keep = s > rtol * np.maximum(s[..., :1], np.finfo(float).tiny)
    return U * keep[..., None, :]


def reference_signals(freq: float, n_times: int, sfreq: float, n_harmonics: int) -> np.ndarray:
    """(T, 2 * n_harmonics) sines and cosines at ``freq`` and its harmonics."""
    if n_harmonics * freq >= sfreq / 2:
        raise ValueError(f"harmonic {n_harmonics} of {freq} Hz is at or above Nyquist "
                         f"({sfreq / 2} Hz)")
    t = np.arange(n_times) / sfreq
    waves = [fn(2 * np.pi * h * freq * t) for h in range(1, n_harmonics + 1)
             for fn in (np.sin, np.cos)]
    return np.stack(waves, axis=1)


class CCACorrelations(TransformerMixin, BaseEstimator):
    """Per window, the largest canonical correlation with each frequency's references.

    Output (n, len(freqs)). The first canonical correlation between the window's channels
    and the references is the largest singular value of ``Qx^T Qy`` (orthonormal bases of
    the two column spaces): exact, no iterative solver. Training-free.
    """

    def __init__(self, freqs=(13.0, 17.0, 21.0), sfreq: float = 200.0, n_harmonics: int = 2,
                 chunk: int = 256):
        self.freqs, self.sfreq, self.n_harmonics, self.chunk = freqs, sfreq, n_harmonics, chunk

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        X = float64_windows(X)
        n_times = X.shape[-1]
        refs = [_orthonormal_basis(reference_signals(f, n_times, self.sfreq, self.n_harmonics))
                for f in self.freqs]
        out = np.empty((len(X), len(refs)))
        for lo in range(0, len(X), self.chunk):
            qx = _orthonormal_basis(np.swapaxes(X[lo:lo + self.chunk], 1, 2))  # (n, T, C)
            for j, qy in enumerate(refs):
                m = np.swapaxes(qx, 1, 2) @ qy  # (n, C, 2H)
                out[lo:lo + self.chunk, j] = np.linalg.svd(m, compute_uv=False)[:, 0]
        return np.clip(out, 0.0, 1.0)


def stimulation_freqs(classes) -> list[float | None]:
    """Per class name, its stimulation frequency: ``"13Hz"`` -> 13.0, ``"rest"`` -> None."""
    out = []
    for name in classes:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*hz\s*", str(name), flags=re.IGNORECASE)
        out.append(float(m.group(1)) if m else None)
    return out


class SSVEPCCA(ClassifierMixin, BaseEstimator):
    """CCA SSVEP classifier (Lin et al. 2006), with a learned read-out for a rest class.

    Parameters
    ----------
    freqs : sequence of float or None
        Per class label ``k`` (the store's class order), its stimulation frequency in Hz,
        or None for a class without stimulation ("rest"); see :func:`stimulation_freqs`.
    bands : sequence of (low, high) Hz, optional
        Filter-bank CCA (Chen et al. 2015): the correlations of each sub-band, squared and
        weighted by ``m ** -1.25 + 0.25`` for sub-band ``m = 1, 2, ...``, summed per
        frequency. None: one CCA on the window as stored.
    readout : "logistic" or "argmax"
        ``"argmax"`` is the classical training-free rule: the class whose references
        correlate best; it can never answer a class without a frequency, so it only suits
        tasks where every class is a stimulation frequency, and exposes
        ``decision_function`` (the correlations) but no probabilities. ``"logistic"`` (the
        default) fits a standardised logistic regression on the vector of per-frequency
        correlations, on training windows only: "rest" is then learned as "no frequency
        stands out", and the other classes keep the CCA evidence.
    """

    def __init__(self, freqs, sfreq: float = 200.0, n_harmonics: int = 2,
                 readout: str = "logistic", C: float = 1.0, bands=None):
        self.freqs, self.sfreq, self.n_harmonics = freqs, sfreq, n_harmonics
        self.readout, self.C, self.bands = readout, C, bands

    def _stim(self):
        labels = [k for k, f in enumerate(self.freqs) if f is not None]
        return np.array(labels, dtype=np.int64), [float(self.freqs[k]) for k in labels]

    def correlations(self, X) -> np.ndarray:
        """(n, n_stimulation_classes) largest canonical correlations, in class order."""
        _, freqs = self._stim()
        cca = CCACorrelations(freqs, self.sfreq, self.n_harmonics)
        if not self.bands:
            return cca.transform(X)
        return sum((m ** -1.25 + 0.25) * cca.transform(BandPass(b, self.sfreq).transform(X)) ** 2
                   for m, b in enumerate(self.bands, start=1))

    def fit(self, X, y=None):
        stim, freqs = self._stim()
        if not freqs:
            raise ValueError(f"no stimulation frequency among freqs={list(self.freqs)}")
        if self.readout == "argmax":
            if y is not None:
                other = sorted(set(np.unique(y).tolist()) - set(stim.tolist()))
                if other:
                    raise ValueError(f"readout='argmax' cannot predict classes {other} (no "
                                     "stimulation frequency); use readout='logistic'")
            self.classes_ = stim
        elif self.readout == "logistic":
            if y is None:
                raise ValueError("readout='logistic' learns from labels: fit(X, y)")
            self.readout_ = make_pipeline(StandardScaler(), balanced_logistic(C=self.C))
            self.readout_.fit(self.correlations(X), np.asarray(y))
            self.classes_ = self.readout_.classes_
        else:
            raise ValueError(f"readout must be 'logistic' or 'argmax', got {self.readout!r}")
        return self

    def decision_function(self, X) -> np.ndarray:
        corr = self.correlations(X)
        return corr if self.readout == "argmax" else self.readout_.decision_function(corr)

    @available_if(lambda self: self.readout == "logistic")
    def predict_proba(self, X) -> np.ndarray:
        return self.readout_.predict_proba(self.correlations(X))

    def predict(self, X) -> np.ndarray:
        if self.readout == "argmax":
            return self.classes_[self.correlations(X).argmax(axis=1)]
        return self.readout_.predict(self.correlations(X))


def ssvep_cca(freqs, sfreq: float = 200.0, n_harmonics: int = 2,
              readout: str = "logistic") -> SSVEPCCA:
    """The CCA SSVEP baseline; ``freqs`` per class label, None for rest (see SSVEPCCA)."""
    return SSVEPCCA(freqs=list(freqs), sfreq=sfreq, n_harmonics=n_harmonics, readout=readout)


def ssvep_fbcca(freqs, sfreq: float = 200.0, n_harmonics: int = 3, readout: str = "logistic",
                bands=None) -> SSVEPCCA:
    """Filter-bank CCA: sub-bands from 8m Hz to 74 Hz (m = 1..5), 3 harmonics."""
    return SSVEPCCA(freqs=list(freqs), sfreq=sfreq, n_harmonics=n_harmonics, readout=readout,
                    bands=[tuple(b) for b in (bands or FBCCA_BANDS)])


# ---------------------------------------------------------------------------------------------
# registry and per-paradigm defaults


CLASSICAL = {"csp_lda": csp_lda, "ts_lr": tangent_space_lr, "xdawn_lr": xdawn_lr,
             "cca": ssvep_cca, "bandpower_lr": bandpower_lr, "fbcca": ssvep_fbcca,
             "psd_lr": psd_lr, "fb_ts_lr": fb_ts_lr, "fbcsp_lda": fbcsp_lda}

#: per paradigm (every one of PARADIGMS), its standard baselines
_DEFAULTS = {"ssvep": ("fbcca", "psd_lr", "fb_ts_lr"), "erp": ("xdawn_lr", "ts_lr"),
             "task": ("csp_lda", "fbcsp_lda", "fb_ts_lr"),
             "rest": ("csp_lda", "fbcsp_lda", "fb_ts_lr"), "epilepsy": ("bandpower_lr",)}

_NEEDS_SFREQ = {"cca", "fbcca", "bandpower_lr", "csp_lda", "psd_lr", "fb_ts_lr", "fbcsp_lda"}


def default_baselines(paradigm, n_channels: int | None = None) -> tuple[str, ...]:
    """Names (keys of :data:`CLASSICAL`) of the standard baselines of a paradigm.

    ``paradigm``: one of :data:`~brainfm.data.datasets.PARADIGMS` (``ssvep``, ``erp``,
    ``task``/``rest`` (oscillatory state), ``epilepsy``), or a
    :class:`~brainfm.data.datasets.DatasetSpec`, whose config declares its own. Single-channel
    data gets ``bandpower_lr`` whatever the paradigm: CSP and covariances need >= 2 channels.
    """
    if isinstance(paradigm, DatasetSpec):
        if paradigm.paradigm is None:
            raise ValueError(f"dataset {paradigm.name!r} declares no paradigm; add "
                             f"'paradigm: <one of {list(PARADIGMS)}>' to its config")
        paradigm = paradigm.paradigm
    if paradigm not in _DEFAULTS:
        raise ValueError(f"unknown paradigm {paradigm!r}; one of {list(PARADIGMS)} (a dataset "
                         "declares its own as 'paradigm:' in its config)")
    if n_channels is not None and int(n_channels) < 2:
        return ("bandpower_lr",)
    return _DEFAULTS[paradigm]


def make_baseline(name: str, classes=None, sfreq: float = 200.0, **kwargs):
    """A fresh, unfitted baseline ``name``; ``classes`` (store class names) feed the CCA.

    ``cca``/``fbcca`` take their frequencies from ``freqs=`` or else from ``classes``
    (``"13Hz"``); ``fb_ts_lr`` uses the SSVEP sub-bands when ``classes`` name frequencies;
    the band-limited baselines take ``sfreq``.
    """
    if name not in CLASSICAL:
        raise ValueError(f"unknown baseline {name!r}; one of {sorted(CLASSICAL)}")
    stim = stimulation_freqs(classes) if classes is not None else []
    if name in ("cca", "fbcca") and "freqs" not in kwargs:
        if classes is None:
            raise ValueError(f"{name} needs freqs= or the class names (e.g. '13Hz')")
        kwargs["freqs"] = stim
    if name == "fb_ts_lr" and "bands" not in kwargs and any(f is not None for f in stim):
        kwargs.setdefault("paradigm", "ssvep")
    if name in _NEEDS_SFREQ:
        kwargs.setdefault("sfreq", sfreq)
    return CLASSICAL[name](**kwargs)


# ---------------------------------------------------------------------------------------------
# evaluation through a protocol


def _class_scores(estimator, X, n_classes: int) -> np.ndarray | None:
    """(n, n_classes) scores with column k for label k (a fold may lack a class)."""
    if hasattr(estimator, "predict_proba"):
        s = np.asarray(estimator.predict_proba(X), dtype=np.float64)
        fill = 0.0
    elif hasattr(estimator, "decision_function"):
        s = np.asarray(estimator.decision_function(X), dtype=np.float64)
        if s.ndim == 1:  # binary decision function: the score of classes_[1]
            s = np.stack([-s, s], axis=1)
        fill = s.min() - 1.0  # a class never trained on ranks below every other
    else:
        return None
    out = np.full((len(s), n_classes), fill)
    out[:, np.asarray(estimator.classes_, dtype=np.int64)] = s
    return out


def evaluate_baseline(factory, X, y, table, protocol, n_classes: int | None = None,
                      groups=None) -> pd.DataFrame:
    """Fit a fresh estimator per fold on its training rows, score its test rows.

    ``factory()`` makes an unfitted estimator; ``table`` is the window table aligned with
    ``X``/``y`` (row ``i`` describes ``X[i]``); ``protocol`` a splitter of
    :mod:`brainfm.bench.protocols`. Validation rows are neither trained on nor scored
    (these baselines select nothing): build the protocol without validation
    (``val_subjects=0`` / ``val_fraction=0``) to train on every non-test group.
    ``groups``, if given, keeps only the folds whose ``test_group`` is listed.

    Returns one row per fold: ``fold``, ``test_group``, ``n_train``, ``n_test``,
    ``fit_s`` and :func:`~brainfm.bench.metrics.classification_metrics`.
    """
    X, y = np.asarray(X), np.asarray(y, dtype=np.int64)
    if not len(X) == len(y) == len(table):
        raise ValueError(f"X ({len(X)}), y ({len(y)}) and table ({len(table)}) must align")
    n_classes = int(n_classes or y.max() + 1)
    results = []
    for split in protocol.split(table):
        if groups is not None and split.test_group not in groups:
            continue
        start = time.perf_counter()
        est = factory().fit(X[split.train], y[split.train])
        fit_s = time.perf_counter() - start
        x_test, y_test = X[split.test], y[split.test]
        scores = _class_scores(est, x_test, n_classes)
        metrics = classification_metrics(y_test, est.predict(x_test),
                                         None if scores is None or n_classes != 2
                                         else scores[:, 1], n_classes=n_classes)
        results.append({"fold": split.name, "test_group": split.test_group,
                        "n_train": len(split.train), "n_test": len(split.test),
                        "fit_s": fit_s, **metrics})
    if not results:
        raise ValueError("no fold was evaluated (groups matched no test group)")
    return pd.DataFrame(results)

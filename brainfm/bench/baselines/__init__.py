"""Baselines of the benchmark suite: classical EEG pipelines a foundation model must beat."""
from .classical import (CLASSICAL, BandPower, CCACorrelations, SSVEPCCA,
                        arrays_from_store, bandpower_lr, csp_lda, default_baselines,
                        evaluate_baseline, make_baseline, stimulation_freqs,
                        tangent_space_lr, ssvep_cca, ssvep_fbcca, xdawn_lr)
from .filterbank import BandPass, LogPSD, declared_band, fb_ts_lr, fbcsp_lda, psd_lr

__all__ = ["CLASSICAL", "BandPass", "BandPower", "CCACorrelations",
           "LogPSD", "SSVEPCCA", "arrays_from_store", "bandpower_lr", "csp_lda",
           "declared_band", "default_baselines", "evaluate_baseline", "fb_ts_lr", "fbcsp_lda",
           "make_baseline", "psd_lr", "ssvep_cca", "ssvep_fbcca", "stimulation_freqs",
           "tangent_space_lr", "xdawn_lr"]

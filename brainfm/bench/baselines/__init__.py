"""Baselines of the benchmark suite: classical EEG pipelines a foundation model must beat."""
from .classical import (CLASSICAL, DATASET_PARADIGMS, BandPower, CCACorrelations, SSVEPCCA,
                        arrays_from_store, bandpower_lr, csp_lda, default_baselines,
                        evaluate_baseline, make_baseline, stimulation_freqs,
                        tangent_space_lr, ssvep_cca, xdawn_lr)

__all__ = ["CLASSICAL", "DATASET_PARADIGMS", "BandPower", "CCACorrelations", "SSVEPCCA",
           "arrays_from_store", "bandpower_lr", "csp_lda", "default_baselines",
           "evaluate_baseline", "make_baseline", "ssvep_cca", "stimulation_freqs",
           "tangent_space_lr", "xdawn_lr"]

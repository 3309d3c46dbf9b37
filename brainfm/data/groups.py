"""Which windows belong together when data is split: one convention for the whole package.

A window's subject group is ``dataset/subject``; where a dataset has no subject ids (the
epilepsy segments) each recording is its own group, ``dataset/rec/recording``, so that no
split ever puts windows of one recording on both sides.
"""
from __future__ import annotations

import numpy as np

NO_SUBJECT = "n/a"


def recording_groups(table) -> np.ndarray:
    """Per window: ``dataset/rec/recording``."""
    return (table["dataset"].astype(str) + "/rec/" + table["recording"].astype(str)
            ).to_numpy(dtype=object).astype(str)


def subject_groups(table) -> np.ndarray:
    """Per window: ``dataset/subject``, or its recording group where there is no subject."""
    subject = table["subject"].fillna(NO_SUBJECT).astype(str)
    return np.where(subject.to_numpy() == NO_SUBJECT, recording_groups(table),
                    (table["dataset"].astype(str) + "/" + subject).to_numpy(dtype=object)
                    ).astype(str)

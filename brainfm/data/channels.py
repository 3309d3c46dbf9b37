"""Channel names and types: one canonical spelling, and a type inferred from the name.

Files spell the same electrode many ways (``EEG Fp1``, ``FP1-REF``, ``Fp1.``, ``T3``); the
model and the sensor encodings need one. Many formats (EDF above all) do not store channel
types, so ``ECG ECG`` or ``EEG A2-A1`` arrive typed as EEG and must be recognised by name.
"""
from __future__ import annotations

import fnmatch
import re
from functools import lru_cache

#: Types that carry brain signal; everything else is dropped by the default picks.
NEURAL_TYPES = ("eeg", "mag", "grad", "seeg", "ecog", "dbs")

#: Old 10-20 names and their 10-10 successors (same electrode sites).
ALIASES = {"T3": "T7", "T4": "T8", "T5": "P7", "T6": "P8"}

_REFERENCE_SITES = {"A1", "A2", "M1", "M2", "TP9", "TP10"}
_PREFIXES = ("EEG", "POL", "SEEG", "ECOG", "EEG-", "EEG_")
_REF_SUFFIX = re.compile(r"[-_ ]?(REF|LE|RE|AR|AVG|AV|CAR|M1|M2|A1A2|LINKED)$", re.IGNORECASE)
# MNE makes duplicate labels unique with running numbers: two 'EEG Fp1' -> 'EEG Fp1-0', '-1'
_RUNNING_NUMBER = re.compile(r"^(.*\S)-\d+$")

# name patterns (on the upper-cased raw name) that decide a non-EEG type
_TYPE_PATTERNS = [
    ("ecg", re.compile(r"\b(ECG|EKG)")),
    ("eog", re.compile(r"\b(EOG|HEOG|VEOG|LOC|ROC)\b|EOG")),
    ("emg", re.compile(r"\b(EMG|CHIN)|EMG")),
    ("stim", re.compile(r"^(STATUS|TRIGGER|TRIG|STI\b.*|STI\d+|MARKER\d*|EVENT|EVENTS|PHOTIC)$")),
    ("resp", re.compile(r"\b(RESP|THOR|ABDO|AIRFLOW|SPO2|PLETH|PULSE|SAO2)")),
    ("misc", re.compile(r"\b(AUX|ERGO|PAT|TECH|BP\d+|DC\d+|X\d+|TEMP|LIGHT|ACCEL|GYRO)\b|^\$")),
]


@lru_cache(maxsize=1)
def _template_names() -> dict[str, str]:
    """Upper-case -> canonical spelling of every 10-05 electrode name MNE knows."""
    import mne

    names = {}
    for montage in ("fsaverage_1005", "spherical_1005"):
        try:
            for n in mne.channels.make_standard_montage(montage).ch_names:
                names.setdefault(n.upper(), n)
        except ValueError:  # montage renamed or absent in this MNE version
            continue
    for extra in ("A1", "A2", "M1", "M2"):  # ear/mastoid sites that some montages lack
        names.setdefault(extra, extra)
    return names


def canonical_10_05(name: str) -> str | None:
    """The template spelling of a 10-05 electrode name, after aliases; None if not one."""
    up = name.strip().upper()
    up = ALIASES.get(up, up)
    return _template_names().get(up)


def normalise_name(name: str) -> str:
    """Canonical spelling of a channel name.

    Strips padding dots and spaces, a modality prefix (``EEG Fp1``) and a reference suffix
    (``Fp1-REF``, ``O1-LE``), maps T3/T4/T5/T6 to T7/T8/P7/P8 and restores template case
    (``FP1`` -> ``Fp1``). A name that is not a 10-05 electrode keeps its stripped spelling,
    so bipolar derivations such as ``A2-A1`` stay recognisable. An electrode with the running
    number MNE appends to duplicate labels (``EEG Fp1-1``) is that electrode: two of them
    then collide, and the reader refuses the file instead of silently dropping their
    positions.
    """
    stripped = name.strip().strip(".").strip()
    numbered = _RUNNING_NUMBER.match(stripped)
    if numbered:
        base = normalise_name(numbered.group(1))
        if canonical_10_05(base) is not None:
            return base
    candidates = [stripped]
    for prefix in _PREFIXES:
        if stripped.upper().startswith(prefix) and len(stripped) > len(prefix):
            candidates.append(stripped[len(prefix):].strip(" -_"))
    for cand in list(candidates):
        candidates.append(_REF_SUFFIX.sub("", cand))
    for cand in candidates:
        canon = canonical_10_05(cand)
        if canon is not None:
            return canon
    # not an electrode: drop a modality prefix only from derivations (``EEG A2-A1``)
    for cand in candidates[1:]:
        if is_bipolar(cand):
            return cand
    return stripped


def is_bipolar(name: str) -> bool:
    """True for derivations between two electrode sites such as ``A2-A1`` or ``Fp1-F7``."""
    parts = re.split(r"\s*-\s*", name.strip())
    return len(parts) == 2 and all(canonical_10_05(p) for p in parts)


def infer_type(raw_name: str, declared: str) -> str:
    """The channel type, trusting the file unless it only said the generic ``eeg``.

    EDF, BDF and CSV sources type every channel as EEG; a name that says ECG, EOG, EMG,
    stimulus or auxiliary wins over that. Ear-to-ear reference derivations become ``misc``.
    """
    if declared not in ("eeg", "misc", "bio"):
        return declared
    up = raw_name.strip().upper()
    bare = re.sub(r"^(EEG|POL)[ _-]+", "", up)
    for kind, pattern in _TYPE_PATTERNS:
        if pattern.search(up) or pattern.search(bare):
            return kind
    if declared == "eeg":
        body = normalise_name(raw_name)
        if is_bipolar(body) and all(p.strip().upper() in _REFERENCE_SITES
                                    for p in re.split(r"\s*-\s*", body)):
            return "misc"  # ear-to-ear reference derivation such as A2-A1
        return "eeg"
    return declared


def apply_type_overrides(names: list[str], types: list[str],
                         overrides: dict[str, str] | None) -> list[str]:
    """Set types from ``{pattern: type}``; patterns are shell globs on the (normalised) name."""
    if not overrides:
        return list(types)
    out = list(types)
    for i, n in enumerate(names):
        for pattern, kind in overrides.items():
            if fnmatch.fnmatchcase(n.upper(), str(pattern).upper()):
                out[i] = kind
    return out

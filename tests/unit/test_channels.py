"""Channel name normalisation and type inference."""
import pytest

from brainfm.data.channels import apply_type_overrides, infer_type, normalise_name


@pytest.mark.parametrize("raw, canonical", [
    ("EEG Fp1", "Fp1"), ("EEG T3", "T7"), ("T4", "T8"), ("T5", "P7"), ("EEG T6", "P8"),
    ("FP1-REF", "Fp1"), ("O1-LE", "O1"), ("Fc5.", "FC5"), ("C5..", "C5"), ("Fcz.", "FCz"),
    ("FZ", "Fz"), ("cz", "Cz"), ("POL FP2", "Fp2"), ("EEG A2-A1", "A2-A1"),
    ("EEG 000", "EEG 000"), ("MEG 0113", "MEG 0113"), (" Iz.. ", "Iz"),
])
def test_normalise_name(raw, canonical):
    assert normalise_name(raw) == canonical


@pytest.mark.parametrize("raw, declared, kind", [
    ("ECG ECG", "eeg", "ecg"), ("POL EKG1", "eeg", "ecg"), ("EEG A2-A1", "eeg", "misc"),
    ("Right AUX", "eeg", "misc"), ("Status", "eeg", "stim"), ("STI 014", "eeg", "stim"),
    ("EOG 061", "eeg", "eog"), ("EMG chin", "eeg", "emg"), ("POL DC01", "eeg", "misc"),
    ("EEG Fp1", "eeg", "eeg"), ("Fp1-F7", "eeg", "eeg"),
    # types a file declares explicitly are trusted
    ("ECG-like name", "grad", "grad"), ("G1", "ecog", "ecog"),
])
def test_infer_type(raw, declared, kind):
    assert infer_type(raw, declared) == kind


def test_type_overrides_use_globs_case_insensitively():
    out = apply_type_overrides(["POL X1", "POL X2", "Fp1"], ["misc", "misc", "eeg"],
                               {"pol x*": "ecog"})
    assert out == ["ecog", "ecog", "eeg"]

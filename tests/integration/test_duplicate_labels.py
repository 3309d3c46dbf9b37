"""Two channels with one label in a real EDF: MNE numbers them (``EEG Fp1-0``/``-1``) and
they would lose their electrode positions; brainfm refuses the file and names both."""
import shutil
from pathlib import Path

import pytest

import brainfm
from brainfm.data.prep import prepare

from ..helpers import load_configs

pytestmark = pytest.mark.real_data

SAMPLE = Path(__file__).resolve().parents[2] / "brainfm" / "sample_data" / "eegmat"


def _relabel(src: Path, dst: Path, old: str, new: str) -> Path:
    raw = bytearray(src.read_bytes())
    n = int(raw[252:256])
    labels = [raw[256 + 16 * i:256 + 16 * (i + 1)].decode().strip() for i in range(n)]
    i = labels.index(old)
    raw[256 + 16 * i:256 + 16 * (i + 1)] = new.encode().ljust(16)
    dst.write_bytes(bytes(raw))
    return dst


def test_duplicate_label_is_refused_with_both_names(tmp_path):
    bad = _relabel(SAMPLE / "Subject00_1.edf", tmp_path / "Subject00_1.edf", "EEG T4",
                   "EEG Fp1")
    with pytest.raises(ValueError, match=rf"{bad}: channels 'EEG Fp1-0' and 'EEG Fp1-1' both "
                                         "map to 'Fp1'"):
        brainfm.read_recording(bad)


def test_batch_records_the_duplicate_and_goes_on(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(SAMPLE, data)
    _relabel(SAMPLE / "Subject01_2.edf", data / "Subject01_2.edf", "EEG O2", "EEG Cz")
    spec, std = load_configs("eegmat_sample", [f"dataset.path={data}"])
    summary = prepare(spec, std, data, tmp_path / "store", progress=False, n_jobs=1)
    assert summary.failed == 1 and summary.done == 7
    assert "'EEG Cz-0' and 'EEG Cz-1' both map to 'Cz'" in summary.failures["Subject01_2.edf"]

"""Bad input made from real recordings: every failure is a clear, actionable brainfm error.

Each case copies a real file into ``tmp_path`` (or rebuilds a real recording in memory),
breaks it one way, and checks that brainfm raises a ``ValueError`` subclass whose message
names the file, says what is wrong and, after ``->``, what to do about it.
"""
from __future__ import annotations

import re
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import signal

import brainfm
from brainfm.data.datasets import DatasetSpec
from brainfm.data.packing import read_pack_index
from brainfm.data.prep import prepare
from brainfm.data.standardise import StandardiseConfig, standardise
from brainfm.data.store import CorpusStore, StoreError
from brainfm.data.windows import event_windows, fixed_windows
from brainfm.errors import ConfigError, RecordingError
from brainfm.paths import project_root

pytestmark = pytest.mark.real_data

EEGMAT_FILE = "Subject00_1.edf"


# ---- helpers ------------------------------------------------------------------------------
def assert_clear_error(excinfo, source, problem: str) -> str:
    """The error is a brainfm ValueError naming ``source``, matching ``problem``, with a hint."""
    err = excinfo.value
    msg = str(err)
    assert isinstance(err, (RecordingError, ConfigError)), f"{type(err).__name__}: {msg}"
    assert str(source) in msg, f"the message does not name {source}: {msg!r}"
    head, arrow, hint = msg.partition(" -> ")
    assert arrow and hint.strip(), f"no '-> what to do' hint in {msg!r}"
    assert re.search(problem, head, re.IGNORECASE), f"{problem!r} not in {head!r}"
    return msg


def edf_header_bytes(raw: bytes) -> int:
    """Size of an EDF header, from its 'bytes in header record' field."""
    return int(raw[184:192])


def edf_labels(raw: bytes) -> list[str]:
    """The channel labels of an EDF header, unpadded."""
    n = int(raw[252:256])
    return [raw[256 + 16 * i:256 + 16 * (i + 1)].decode("ascii").strip() for i in range(n)]


def truncated_copy(src, dst, n_bytes: int):
    """``dst`` holding only the first ``n_bytes`` of ``src``."""
    dst.write_bytes(src.read_bytes()[:n_bytes])
    return dst


def rebuilt(rec, data=None, sfreq=None, names=None):
    """A real recording rebuilt through ``from_array``, keeping its file name as source."""
    return brainfm.from_array(rec.data if data is None else data,
                              rec.sfreq if sfreq is None else sfreq,
                              rec.ch_names if names is None else names, rec.ch_types,
                              name=rec.source)


@pytest.fixture(scope="module")
def eegmat_edf(data_root):
    """One real eegmat EDF (read-only, in the shared folder)."""
    return data_root / "eegmat" / EEGMAT_FILE


@pytest.fixture(scope="module")
def eegmat_rec(eegmat_edf):
    """That EDF read by brainfm (tests copy its data before changing it)."""
    return brainfm.read_recording(eegmat_edf)


# ---- unreadable files ---------------------------------------------------------------------
TRUNCATIONS = {
    "half_the_bytes": lambda raw: len(raw) // 2,
    "header_only": edf_header_bytes,
    "inside_first_header_block": lambda raw: 3000,
    "inside_last_header_field": lambda raw: edf_header_bytes(raw) - 100,
}
@pytest.mark.parametrize("cut", [
    "half_the_bytes",
    "header_only",
    "inside_first_header_block",
    "inside_last_header_field",
])
def test_truncated_edf(eegmat_edf, tmp_path, cut):
    """A real EDF cut short is reported as unreadable, not read as a shorter recording."""
    n_bytes = TRUNCATIONS[cut](eegmat_edf.read_bytes())
    bad = truncated_copy(eegmat_edf, tmp_path / EEGMAT_FILE, n_bytes)
    with pytest.raises(ValueError) as excinfo:
        brainfm.read_recording(bad)
    assert_clear_error(excinfo, bad, r"truncated|corrupt|incomplete|could not read")


def test_random_bytes_with_edf_extension(eegmat_edf, tmp_path):
    """Random bytes named .edf (as long as a real EDF) are reported as not a readable EDF."""
    bad = tmp_path / "noise.edf"
    bad.write_bytes(np.random.default_rng(0).bytes(eegmat_edf.stat().st_size))
    with pytest.raises(ValueError) as excinfo:
        brainfm.read_recording(bad)
    assert_clear_error(excinfo, bad, r"could not read|corrupt|bad edf")


def test_unknown_extension(eegmat_edf, tmp_path):
    """A real EDF renamed .xyz is reported as an unsupported file type."""
    bad = tmp_path / "Subject00_1.xyz"
    shutil.copy(eegmat_edf, bad)
    with pytest.raises(ValueError) as excinfo:
        brainfm.read_recording(bad)
    assert_clear_error(excinfo, bad, r"unsupported|not supported")


def test_plain_text_samples(eegmat_rec, tmp_path):
    """Real samples saved as a .txt table are reported as unreadable, not an AssertionError."""
    bad = tmp_path / "Subject00_1.txt"
    np.savetxt(bad, eegmat_rec.data[:, :500].T * 1e6, fmt="%.3f")
    with pytest.raises(ValueError) as excinfo:
        brainfm.read_recording(bad)
    assert_clear_error(excinfo, bad, r"unsupported|not supported|could not read|format")


# ---- readable but unusable ----------------------------------------------------------------
@pytest.mark.parametrize("bad_value", [np.nan, np.inf])
def test_non_finite_channel(eegmat_rec, bad_value):
    """NaN/Inf samples in one channel: standardise names that channel."""
    data = eegmat_rec.data.copy()
    channel = eegmat_rec.ch_names.index("F4")
    data[channel, 1000:1100] = bad_value
    with pytest.raises(ValueError) as excinfo:
        standardise(rebuilt(eegmat_rec, data=data), StandardiseConfig())
    assert_clear_error(excinfo, eegmat_rec.source, r"NaN or Inf.*'F4'")


def test_all_channels_flat(eegmat_rec):
    """A recording whose samples are all one constant is reported as carrying no signal."""
    data = np.full_like(eegmat_rec.data, 1e-5)
    with pytest.raises(ValueError) as excinfo:
        standardise(rebuilt(eegmat_rec, data=data), StandardiseConfig())
    assert_clear_error(excinfo, eegmat_rec.source, r"flat")


def test_shorter_than_one_window(eegmat_rec):
    """2 s of a real recording cannot give a 5 s window; the error gives both lengths."""
    short = rebuilt(eegmat_rec, data=eegmat_rec.data[:, :int(2 * eegmat_rec.sfreq)])
    with pytest.raises(ValueError) as excinfo:
        fixed_windows(short, 5.0)
    assert_clear_error(excinfo, eegmat_rec.source, r"2\.00 s.*shorter.*5 s window")


def test_rate_too_low_for_band_pass(eegmat_rec):
    """Real data decimated to 100 Hz cannot be band-passed to 75 Hz; the error names the rate."""
    data = signal.resample_poly(eegmat_rec.data.astype(np.float64), 2, 5, axis=1)
    low = rebuilt(eegmat_rec, data=data, sfreq=100.0)
    with pytest.raises(ValueError) as excinfo:
        standardise(low, StandardiseConfig(h_freq=75.0))
    assert_clear_error(excinfo, eegmat_rec.source, r"\b100 Hz\b.*too low.*75 Hz")


@pytest.mark.parametrize("new_name, clash", [("T3", "T7"), ("Fp1", "Fp1")])
def test_duplicate_channel_names(eegmat_rec, new_name, clash):
    """Fp2 renamed to T3 (alias of the real T7) or to Fp1 (already there) is refused."""
    names = [new_name if n == "Fp2" else n for n in eegmat_rec.ch_names]
    with pytest.raises(ValueError) as excinfo:
        rebuilt(eegmat_rec, names=names)
    assert_clear_error(excinfo, eegmat_rec.source,
                       rf"'{new_name}' and '{clash}' both map to '{clash}'")


def test_colliding_edf_labels(eegmat_edf, tmp_path):
    """A real EDF whose header relabels T4 as T7 (beside the old T3) is refused at reading."""
    raw = bytearray(eegmat_edf.read_bytes())
    i = edf_labels(bytes(raw)).index("EEG T4")
    raw[256 + 16 * i:256 + 16 * (i + 1)] = b"EEG T7".ljust(16)
    bad = tmp_path / EEGMAT_FILE
    bad.write_bytes(bytes(raw))
    with pytest.raises(ValueError) as excinfo:
        brainfm.read_recording(bad)
    assert_clear_error(excinfo, bad, r"'EEG T3'.*'EEG T7'.*both map to 'T7'")


def test_no_usable_channels(data_root, tmp_path):
    """A real Muse CSV cut to timestamps, 'Right AUX' and Marker has no channel to keep."""
    src = sorted((data_root / "muse_p300").rglob("*.csv"))[0]
    table = pd.read_csv(src)
    marker = next(c for c in table.columns if c.startswith("Marker"))
    bad = tmp_path / src.name
    table[["timestamps", "Right AUX", marker]].to_csv(bad, index=False)
    rec = brainfm.read_recording(bad)
    with pytest.raises(ValueError) as excinfo:
        standardise(rec, StandardiseConfig())
    assert_clear_error(excinfo, bad, r"no channels of types")


def test_label_map_matches_no_event(data_root):
    """A label map whose keys match no event lists the events the recording does have."""
    src = sorted((data_root / "ssvep_exoskeleton").glob("subject*/*_raw.fif"))[0]
    rec = brainfm.read_recording(src)
    with pytest.raises(ValueError) as excinfo:
        event_windows(rec, {"99": "x"}, ["x"], 0.0, 5.0)
    msg = assert_clear_error(excinfo, src, r"\['99'\] match no event")
    assert "'2': 8" in msg


# ---- batch preparation --------------------------------------------------------------------
GOOD = ("Subject00_1.edf", "Subject00_2.edf")
BAD = "Subject01_1.edf"


def eegmat_spec() -> DatasetSpec:
    """conf/dataset/eegmat.yaml as it is; its relative path resolves under the tmp root."""
    cfg = yaml.safe_load((project_root() / "conf" / "dataset" / "eegmat.yaml").read_text())
    return DatasetSpec.from_dict(cfg)


def tiny_eegmat(data_root, tmp_path):
    """tmp_path/data/eegmat with two real recordings and one cut inside its first data
    record (the store goes beside the data root: brainfm refuses stores inside it)."""
    folder = tmp_path / "data" / "eegmat"
    folder.mkdir(parents=True)
    for name in GOOD:
        shutil.copy(data_root / "eegmat" / name, folder / name)
    src = data_root / "eegmat" / BAD
    truncated_copy(src, folder / BAD, edf_header_bytes(src.read_bytes()) + 1000)
    return folder


def run_prepare(data_root):
    return prepare(eegmat_spec(), StandardiseConfig(), data_root, data_root.parent / "store",
                   progress=False)


@pytest.fixture
def prepared(data_root, tmp_path):
    """(dataset folder, store folder, summary) of one prepare over the tiny dataset."""
    folder = tiny_eegmat(data_root, tmp_path)
    return folder, tmp_path / "store", run_prepare(folder.parent)


def test_batch_records_the_bad_file_and_goes_on(prepared):
    """prepare: two done, the truncated one failed with its path; no shard, no temporaries."""
    folder, store, summary = prepared
    assert (summary.done, summary.skipped, summary.failed) == (2, 0, 1), summary.as_text()
    assert list(summary.failures) == [BAD]
    assert str(folder / BAD) in summary.failures[BAD]
    table = pd.read_parquet(store / "recordings.parquet").set_index("relpath")
    assert table.loc[BAD, "status"] == "failed"
    assert str(folder / BAD) in table.loc[BAD, "error"]
    assert (table.loc[list(GOOD), "status"] == "ok").all()
    packs = read_pack_index(store)
    assert table.loc[BAD, "key"] not in packs
    assert not (store / "shards" / f"{table.loc[BAD, 'key']}.npy").exists()
    assert all(k in packs for k in table.loc[list(GOOD), "key"])
    assert not list((store / "shards").glob("*.npy"))     # packed, then removed
    assert not list(store.rglob(".*.tmp"))
    assert set(CorpusStore(store).windows["recording"]) == set(GOOD)


def test_interrupted_run_is_detected_and_resumed(prepared, data_root):
    """Without windows.parquet the store is refused as incomplete; a re-run skips the good
    recordings, retries the failed one, and picks it up once the file is repaired."""
    folder, store, _ = prepared
    (store / "windows.parquet").unlink()
    with pytest.raises(StoreError, match="incomplete"):
        CorpusStore(store)
    again = run_prepare(folder.parent)
    assert (again.done, again.skipped, again.failed) == (0, 2, 1), again.as_text()
    assert list(again.failures) == [BAD]
    n_windows = len(CorpusStore(store))
    folder.joinpath(BAD).unlink()
    shutil.copy(data_root / "eegmat" / BAD, folder / BAD)
    repaired = run_prepare(folder.parent)
    assert (repaired.done, repaired.skipped, repaired.failed) == (1, 2, 0), repaired.as_text()
    assert len(CorpusStore(store)) > n_windows

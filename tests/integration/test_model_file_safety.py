"""Model files that would hurt: a config asking for huge layers is refused before any
allocation, weights with NaN/Inf are refused (or loaded with a warning when allowed), a
file cut short says so, and a checkpoint folder edited by hand (architecture, contract,
weights, weights.file, malformed fields) is refused naming what was changed."""
import json
import resource
import struct
import time
from pathlib import Path

import pytest
import torch

import brainfm
from brainfm.checkpoint import CheckpointError, from_pretrained, save_model
from brainfm.hub.folder import sha256_of
from brainfm.models.criss_cross import CrissCrossTransformer

from ..helpers import run_tool

ORIGINAL = Path(__file__).resolve().parents[1] / "data" / "cbramod_1layer_state_dict.pth"


@pytest.fixture
def model_file(tmp_path):
    """A brainfm model file made from a state dict the original CBraMod code wrote."""
    path = tmp_path / "model.pt"
    save_model(from_pretrained(ORIGINAL), path, extra={"datasets": ["eegmat"]})
    return path


def _rewrite(path, change):
    payload = torch.load(path, weights_only=True)
    change(payload)
    torch.save(payload, path)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize("key, value, message", [
    ("d_ff", 2_000_000_000, "exceeds the .* weights the file holds"),
    ("n_layers", 10_000_000, "exceeds the .* weights the file holds"),
    ("d_ff", 4096, "builds more than .* parameters, the file holds"),
    ("n_layers", 3, "builds more than .* parameters, the file holds"),
    ("n_layers", 60_000, "builds more than .* parameters, the file holds"),
    ("d_ff", 16, "does not describe the weights"),
])
def test_config_asking_for_more_than_the_weights_is_refused_before_allocation(
        model_file, key, value, message):
    _rewrite(model_file, lambda p: p["config"].__setitem__(key, value))
    before, t0 = _peak_rss_mb(), time.perf_counter()
    with pytest.raises(CheckpointError, match=message) as err:
        from_pretrained(model_file)
    assert str(model_file) in str(err.value)
    assert _peak_rss_mb() - before < 500  # the file is ~1 MB; nothing near GBs was allocated
    assert time.perf_counter() - t0 < 2.0  # no model of the asked size is built, even on meta


def test_non_finite_weights_are_refused_unless_allowed(model_file):
    name = "layers.0.spatial.qkv.weight"

    def poison(p):
        assert name in p["state_dict"]
        p["state_dict"][name][0, :3] = torch.tensor([float("nan"), float("inf"), 1.0])

    _rewrite(model_file, poison)
    with pytest.raises(CheckpointError, match=rf"{model_file}: 1 weight tensor.*NaN or Inf "
                                              rf"\({name}\).*allow_nonfinite=True"):
        from_pretrained(model_file)
    with pytest.warns(RuntimeWarning, match=name):
        model = from_pretrained(model_file, allow_nonfinite=True)
    assert torch.isnan(model.state_dict()[name]).any()


@pytest.mark.parametrize("keep", [0.5, 0.99, 100])
def test_truncated_model_file_says_truncated(model_file, keep):
    data = model_file.read_bytes()
    cut = int(len(data) * keep) if keep < 1 else keep
    model_file.write_bytes(data[:cut])
    with pytest.raises(CheckpointError, match=rf"{model_file}: the file is truncated"):
        from_pretrained(model_file)


def test_intact_file_still_loads_the_same_weights(model_file):
    a = from_pretrained(ORIGINAL).state_dict()
    b = from_pretrained(model_file).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("umask", [0o022, 0o007])
def test_model_file_follows_the_umask(tmp_path, umask):
    """Model files used to be 0600 while packs were 0644: shared folders half unreadable."""
    import os
    import stat

    old = os.umask(umask)
    try:
        path = save_model(from_pretrained(ORIGINAL), tmp_path / "m.pt")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


# ---- checkpoint folders edited by hand (issue 19), loaded by brainfm-embed on the sample ----
SAMPLE_FILE = Path(brainfm.__file__).parent / "sample_data" / "eegmat" / "Subject00_1.edf"


@pytest.fixture
def folder(tmp_path):
    """A checkpoint folder on the sample's contract, and a second one beside it."""
    from ..helpers import load_configs

    _, std = load_configs("eegmat_sample")
    meta = dict(datasets=["eegmat_sample"], standardise=std.as_dict(), sfreq=200.0,
                window_s=5.0, sensor_types=["eeg"])
    torch.manual_seed(0)
    brainfm.save_pretrained(CrissCrossTransformer(d_model=16, n_layers=1, n_heads=4, d_ff=32),
                            tmp_path / "other_model", **meta)
    return brainfm.save_pretrained(
        CrissCrossTransformer(d_model=16, n_layers=1, n_heads=4, d_ff=32), tmp_path / "ck",
        **meta)


def _edit(folder, change, reseal=False):
    path = folder / "config.json"
    config = json.loads(path.read_text())
    change(config)
    if reseal:  # as a careful forger would: the seal recomputed over the edit
        from brainfm.hub.config import seal

        config = seal({k: v for k, v in config.items() if k != "integrity"})
    path.write_text(json.dumps(config))


def _embed(folder, tmp_path):
    return run_tool("brainfm-embed", f"checkpoint={folder}", f"input={SAMPLE_FILE}",
                    f"out={tmp_path / 'emb'}", "progress=false")


@pytest.mark.parametrize("change, part", [
    (lambda c: c["architecture"].__setitem__("n_heads", 8), "architecture"),
    (lambda c: c["contract"].__setitem__("sfreq", 100.0), "contract"),
    (lambda c: c["contract"]["standardise"].__setitem__("sfreq", 0), "contract"),
])
def test_config_edited_with_shapes_unchanged_is_refused_naming_the_part(folder, tmp_path,
                                                                        change, part):
    _edit(folder, change)  # (the intact folder embeds: test_embed_command.py)
    done = _embed(folder, tmp_path / "again")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"{folder / 'config.json'}: {part} changed since the folder was written" \
        in done.stderr
    assert not (tmp_path / "again").exists()


def test_weights_swapped_with_the_sha_recomputed_are_refused(folder):
    other = folder.parent / "other_model" / "model.safetensors"
    (folder / "model.safetensors").write_bytes(other.read_bytes())
    _edit(folder, lambda c: c["weights"].__setitem__("sha256", sha256_of(other)))
    with pytest.raises(CheckpointError, match="weights changed since the folder was written"):
        from_pretrained(folder)


@pytest.mark.parametrize("reseal", [False, True])
def test_weights_file_outside_the_folder_is_refused(folder, reseal):
    _edit(folder, lambda c: c["weights"].__setitem__("file",
                                                     "../other_model/model.safetensors"),
          reseal)
    with pytest.raises(CheckpointError, match="weights.file='../other_model/model.safetensors'"
                                              " is not a file name inside the folder"):
        from_pretrained(folder)
    (folder / "model.safetensors").unlink()
    (folder / "model.safetensors").symlink_to(folder.parent / "other_model" /
                                              "model.safetensors")
    _edit(folder, lambda c: c["weights"].__setitem__("file", "model.safetensors"), reseal)
    with pytest.raises(CheckpointError, match="resolves to .*other_model.*outside the folder"):
        from_pretrained(folder)


@pytest.mark.parametrize("change, message", [
    (lambda c: c.__setitem__("architecture", [16, 1, 4]), "architecture is list, not dict"),
    (lambda c: c.__setitem__("weights", "model.safetensors"), "weights is str, not dict"),
    (lambda c: c["weights"].__setitem__("n_parameters", "many"),
     "weights.n_parameters is str, not int"),
    (lambda c: c.__setitem__("family", None), "family is NoneType, not str"),
    (lambda c: c["contract"].__setitem__("standardise", [200]),
     "contract.standardise is list, not dict"),
    (lambda c: c["contract"].__setitem__("sfreq", "200 Hz"),
     "contract.sfreq is str, not int or float"),
])
def test_malformed_config_fields_are_named(folder, change, message):
    for reseal in (False, True):
        _edit(folder, change, reseal)
        with pytest.raises(CheckpointError, match=rf"config.json: malformed \(.*{message}"):
            from_pretrained(folder)


@pytest.mark.parametrize("header", [{"a": 1}, [1, 2], {"w": {"dtype": "F32", "shape": [2],
                                                             "data_offsets": "x"}}])
def test_malformed_safetensors_header_is_named(folder, header):
    text = json.dumps(header).encode()
    data = struct.pack("<Q", len(text)) + text
    (folder / "model.safetensors").write_bytes(data)
    _edit(folder, lambda c: c["weights"].__setitem__("sha256", sha256_of(
        folder / "model.safetensors")), reseal=True)
    with pytest.raises(CheckpointError, match="model.safetensors: not a safetensors file "
                                              "brainfm wrote"):
        from_pretrained(folder)


def test_n_layers_60000_is_refused_at_once_even_resealed(folder):
    _edit(folder, lambda c: c["architecture"].__setitem__("n_layers", 60_000), reseal=True)
    t0, before = time.perf_counter(), _peak_rss_mb()
    with pytest.raises(CheckpointError, match="builds more than .* parameters, the file "
                                              "holds"):
        from_pretrained(folder)
    assert time.perf_counter() - t0 < 1.0 and _peak_rss_mb() - before < 200


def test_edited_readout_or_training_figures_are_refused(folder):
    """The read-out layer decides what embed returns; the held-out figures decide whether
    the benchmark warns that a checkpoint is unlearned: neither can be edited by hand."""
    _edit(folder, lambda c: c["training"].__setitem__("heldout", {"eegmat": {
        "model_vs_best_trivial": 0.1, "multichannel": True}}))
    with pytest.raises(CheckpointError, match="config.json: training changed since"):
        from_pretrained(folder)

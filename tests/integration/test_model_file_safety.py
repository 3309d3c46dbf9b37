"""Model files that would hurt: a config asking for huge layers is refused before any
allocation, weights with NaN/Inf are refused (or loaded with a warning when allowed), and a
file cut short says so."""
import resource
import time
from pathlib import Path

import pytest
import torch

from brainfm.checkpoint import CheckpointError, from_pretrained, save_model

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

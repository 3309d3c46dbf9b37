"""Contract tests run over every backbone configuration."""
import pickle

import pytest
import torch

from brainfm.checkpoint import CheckpointError, from_pretrained, save_model
from brainfm.models import CrissCrossTransformer, count_parameters
from brainfm.models.cbramod_import import CBRAMOD_CONFIG, convert_cbramod_state_dict
from brainfm.paths import project_root

DATA = project_root() / "tests" / "data"
TINY = dict(d_model=32, n_layers=2, n_heads=4, d_ff=64, patch_len=40, dropout=0.0)
CONFIGS = {"tiny-acpe": {**TINY, "positional": "acpe", "acpe_kernel": (5, 3)},
           "tiny-sensor": {**TINY, "positional": "sensor"},
           "tiny-sensor-learned-mask": {**TINY, "positional": "sensor",
                                        "mask_token": "learned"}}


def _inputs(b=2, c=6, n=5, p=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, c, n, p, generator=g)
    sensors = torch.zeros(b, c, 8)
    sensors[..., :3] = torch.randn(b, c, 3, generator=g)
    sensors[..., 6] = 1.0
    sensors[..., 7] = 1.0
    return x, sensors


def test_cbramod_config_has_published_parameter_count():
    assert count_parameters(CrissCrossTransformer(**CBRAMOD_CONFIG)) == 4_924_000


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("c, n", [(1, 3), (4, 5), (19, 2), (64, 1)])
def test_shapes_for_any_montage(name, c, n):
    model = CrissCrossTransformer(**CONFIGS[name]).eval()
    x, sensors = _inputs(c=c, n=n)
    assert model(x, sensors).shape == (2, c, n, 40)
    assert model.forward_features(x, sensors).shape == (2, c, n, 32)
    model.reset_head("classification", n_outputs=3)
    assert model(x, sensors).shape == (2, 3)
    flat = model(x.reshape(2, c, n * 40), sensors)            # (B, C, T) input
    assert torch.allclose(flat, model(x, sensors))


@pytest.mark.parametrize("name", ["tiny-sensor", "tiny-sensor-learned-mask"])
def test_sensor_encoding_is_channel_order_equivariant(name):
    model = CrissCrossTransformer(**CONFIGS[name]).eval()
    x, sensors = _inputs(c=7)
    perm = torch.randperm(7, generator=torch.Generator().manual_seed(1))
    mask = torch.rand(2, 7, 5, generator=torch.Generator().manual_seed(2)) < 0.5
    out = model(x, sensors, mask=mask)
    out_perm = model(x[:, perm], sensors[:, perm], mask=mask[:, perm])
    assert torch.allclose(out[:, perm], out_perm, atol=1e-5)


def test_acpe_depends_on_channel_order():
    """The property the sensor encoding exists for: ACPE is not order-free."""
    model = CrissCrossTransformer(**CONFIGS["tiny-acpe"]).eval()
    x, _ = _inputs(c=7)
    perm = torch.arange(7).flip(0)
    assert not torch.allclose(model(x)[:, perm], model(x[:, perm]), atol=1e-4)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_padded_channels_change_nothing(name):
    model = CrissCrossTransformer(**CONFIGS[name]).eval()
    x, sensors = _inputs(b=1, c=5)
    alone = model(x, sensors)
    pad_x = torch.cat([x, torch.randn(1, 3, 5, 40)], dim=1)
    pad_s = torch.cat([sensors, torch.zeros(1, 3, 8)], dim=1)
    valid = torch.tensor([[True] * 5 + [False] * 3])
    padded = model(pad_x, pad_s, channel_mask=valid)
    assert torch.allclose(padded[:, :5], alone, atol=1e-5)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_state_dict_round_trip(name, tmp_path):
    model = CrissCrossTransformer(**CONFIGS[name]).eval()
    x, sensors = _inputs()
    path = save_model(model, tmp_path / "m.pt", extra={"sfreq": 200.0})
    again = from_pretrained(path).eval()
    assert torch.equal(model(x, sensors), again(x, sensors))
    assert again.extra == {"sfreq": 200.0}


def test_zero_mask_equals_zeroed_input():
    model = CrissCrossTransformer(**CONFIGS["tiny-acpe"]).eval()
    x, _ = _inputs()
    mask = torch.rand(2, 6, 5) < 0.5
    zeroed = x.masked_fill(mask[..., None], 0.0)
    assert torch.equal(model(x, mask=mask), model(zeroed))


def test_original_cbramod_state_dict_reproduces_original_outputs():
    """Weights and outputs written by the original CBraMod code (see tests/data/README.md)."""
    model = from_pretrained(DATA / "cbramod_1layer_state_dict.pth").eval()
    assert model.config["n_layers"] == 1 and model.config["positional"] == "acpe"
    io = torch.load(DATA / "cbramod_1layer_io.pt", weights_only=True)
    assert (model(io["x"]) - io["y"]).abs().max() < 1e-5
    assert (model(io["x"], mask=io["mask"]) - io["y_masked"]).abs().max() < 1e-5


def test_cbramod_key_mapping_covers_every_key():
    state = torch.load(DATA / "cbramod_1layer_state_dict.pth", weights_only=True)
    converted = convert_cbramod_state_dict({f"module.{k}": v for k, v in state.items()})
    ours = CrissCrossTransformer(**{**CBRAMOD_CONFIG, "n_layers": 1}).state_dict()
    assert set(converted) == set(ours)
    assert all(converted[k].shape == ours[k].shape for k in ours)
    with pytest.raises(KeyError, match="no brainfm counterpart"):
        convert_cbramod_state_dict({**state, "encoder.extra.weight": torch.zeros(1)})


class _Payload:
    def __reduce__(self):
        return (print, ("pickled code ran",))


def test_loading_never_executes_pickled_code(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"state_dict": _Payload()}))
    with pytest.raises(CheckpointError, match="never unpickles"):
        from_pretrained(path)
    assert "pickled code ran" not in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(p.stem for p in (project_root() / "conf" / "model")
                                        .glob("*.yaml") if not p.stem.startswith("eegdm")))
def test_every_model_config_builds_and_runs(name):
    """Each criss-cross conf/model file (eegdm*: test_diffusion_task.py), as
    brainfm-pretrain composes it, on 3 and 19 channels."""
    from omegaconf import OmegaConf

    from brainfm.configuration import compose_config

    cfg = OmegaConf.to_container(compose_config([f"model={name}"], "pretrain").model)
    model = CrissCrossTransformer(**cfg).eval()
    for c in (3, 19):
        x, sensors = _inputs(b=1, c=c, n=2, p=cfg["patch_len"])
        assert model(x, sensors).shape == (1, c, 2, cfg["patch_len"])
    if name == "cbramod":
        assert count_parameters(model) == 4_924_000

"""The EEGDM-style denoiser: the reference's outputs from its weights, sizes, any montage."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from brainfm.models.diffusion_denoiser import DiffusionDenoiser
from brainfm.models.eegdm_import import (convert_eegdm_state_dict, eegdm_config,
                                         is_eegdm_state_dict)

DATA = Path(__file__).resolve().parents[1] / "data"


def _golden():
    state = torch.load(DATA / "eegdm_2block_state_dict.pth", weights_only=True)
    io = torch.load(DATA / "eegdm_2block_io.pt", weights_only=True)
    return state, io


def test_reference_weights_reproduce_reference_output():
    """Golden pair made once by the reference code (tests/data/eegdm_README.md); tolerance
    1e-4 absolute on outputs of order 1 (float32 FFTs of length 500 in both)."""
    state, io = _golden()
    assert is_eegdm_state_dict(state)
    model = DiffusionDenoiser(**eegdm_config(state))
    model.load_state_dict(convert_eegdm_state_dict(state))
    model.eval()
    with torch.no_grad():
        y = model.denoise(io["x"][:, 0], io["steps"][:, 0], io["channel_index"][:, 0])
        # the batch interface: 3 windows of one channel each
        y_batch = model(io["x"], io["steps"][:, 0], channel_index=io["channel_index"])
    assert io["y"].abs().max() > 0.5  # a non-trivial reference output
    torch.testing.assert_close(y, io["y"][:, 0], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(y_batch[:, 0], y)


def test_from_pretrained_reads_the_reference_file():
    """brainfm.from_pretrained on the reference's own state-dict file: one call, either
    backbone family."""
    import brainfm

    _, io = _golden()
    model = brainfm.from_pretrained(DATA / "eegdm_2block_state_dict.pth").eval()
    assert isinstance(model, DiffusionDenoiser) and model.extra["source_format"] == "eegdm"
    with torch.no_grad():
        y = model(io["x"], io["steps"][:, 0], channel_index=io["channel_index"])
    torch.testing.assert_close(y, io["y"], atol=1e-4, rtol=1e-4)


def test_lightning_checkpoint_prefers_ema_weights():
    state, _ = _golden()
    ckpt = {**{f"model.{k}": torch.zeros_like(v) for k, v in state.items()},
            **{f"ema.ema_model.{k}": v for k, v in state.items()}}
    converted = convert_eegdm_state_dict(ckpt)
    torch.testing.assert_close(converted["input.0.weight"], state["in_layer.0.weight"])
    with pytest.raises(KeyError, match="local_cond"):
        convert_eegdm_state_dict({**state, "layers.0.local_cond_linear.weight": torch.zeros(1)})


def test_parameter_counts():
    _, io = _golden()
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    # the reference's channel-index table: exactly the published model
    assert count(DiffusionDenoiser(channel_conditioning="index")) == 5_931_649
    assert int(io["published_n_params"]) == 5_931_649
    # brainfm's sensor code: Linear(7, 128) + type embedding (7 x 128) replaces 22 x 128
    assert count(DiffusionDenoiser()) == 5_931_649 - 22 * 128 + 7 * 128 + 128 + 7 * 128


def test_untrained_model_predicts_zeros_and_skips_padded_channels():
    torch.manual_seed(0)
    model = DiffusionDenoiser(d_model=8, d_state=4, n_layers=2, d_cond=16, d_time_embed=8)
    x = torch.randn(2, 3, 2, 20)                      # (B, C, N, P)
    sensors = torch.zeros(2, 3, 8)
    sensors[..., 6] = 1.0
    assert model(x, torch.tensor([3, 9]), sensors).abs().max() == 0  # zero-initialised output
    torch.nn.init.normal_(model.out.weight)
    mask = torch.tensor([[True, True, False], [True, False, False]])
    y = model(x, torch.tensor([3, 9]), sensors, mask)
    assert y.shape == x.shape
    assert y[~mask].abs().max() == 0 and y[mask].abs().min() > 0
    # channels are independent sequences: one channel's output ignores the others
    x2 = x.clone()
    x2[0, 1] += 1.0
    torch.testing.assert_close(model(x2, torch.tensor([3, 9]), sensors, mask)[0, 0], y[0, 0])


def test_sensor_mode_needs_sensor_features():
    model = DiffusionDenoiser(d_model=8, d_state=4, n_layers=1, d_cond=16, d_time_embed=8)
    with pytest.raises(ValueError, match="sensor features"):
        model(torch.zeros(1, 2, 10), torch.tensor([0]))

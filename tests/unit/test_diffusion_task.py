"""The DDPM task on real EEG: it fits one batch, its configs build, its files load back."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from brainfm.checkpoint import from_pretrained, save_model
from brainfm.models.diffusion_denoiser import DiffusionDenoiser
from brainfm.tasks.base import build_task
from brainfm.tasks.diffusion import DiffusionPretraining

TINY = dict(d_model=16, d_state=16, n_layers=2, d_cond=32, d_time_embed=16)


@pytest.fixture(scope="module")
def real_batch(data_root):
    """Four 5 s windows x 19 EEG channels of eegmat subject 0 at rest, standardised (units of
    100 uV, 200 Hz), with their sensor features: a batch as the DataModule gives it."""
    from brainfm import read_recording
    from brainfm.data.sensors import sensor_features
    from brainfm.data.standardise import standardise
    from brainfm.data.windows import fixed_windows

    rec = standardise(read_recording(data_root / "eegmat" / "Subject00_1.edf"),
                      {"notch": 50.0})
    eeg = [i for i, kind in enumerate(rec.ch_types) if kind == "eeg"
           and rec.ch_names[i] not in rec.missing_positions]
    rec = rec.pick(eeg)
    x = fixed_windows(rec, 5.0).data[:4]
    sensors = sensor_features(rec.ch_types, rec.positions, rec.orientations)
    b, c, _ = x.shape
    return {"x": torch.from_numpy(np.ascontiguousarray(x)).reshape(b, c, 5, 200),
            "sensors": torch.from_numpy(sensors)[None].expand(b, c, -1).clone(),
            "channel_mask": torch.ones(b, c, dtype=torch.bool),
            "dataset": torch.zeros(b, dtype=torch.long)}


@pytest.mark.real_data
@pytest.mark.slow  # 5-20 s on 2 shared cores
def test_overfits_one_real_batch(real_batch):
    """Fixed noise and steps on one real batch: the v-MSE falls far below the all-zeros
    predictor's (which is where the zero-initialised model starts)."""
    torch.manual_seed(0)
    task = DiffusionPretraining(model=TINY, crop_len=200, seed=0)
    batch = {k: v[:1] for k, v in real_batch.items()}
    seq = task._sequences(batch, task._generator(1))
    opt = torch.optim.Adam(task.model.parameters(), lr=1e-2)
    first = None
    for _ in range(80):
        err, zero = task._errors(task.model, batch, seq)
        loss = err.mean()
        first = first if first is not None else (loss.item(), zero.mean().item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert first[0] == pytest.approx(first[1], rel=1e-6)   # zero output at the start
    assert loss.item() < 0.3 * first[1], (loss.item(), first)


def test_channels_per_window_draws_real_channels_only():
    task = DiffusionPretraining(model=TINY, crop_len=50, channels_per_window=3)
    mask = torch.tensor([[True] * 6 + [False] * 2, [True, True] + [False] * 6])
    batch = {"x": torch.randn(2, 8, 100), "channel_mask": mask}
    picks = [task._sequences(batch, task._generator(s))["valid"] for s in range(4)]
    for valid in picks:
        assert valid.sum(-1).tolist() == [3, 2] and not (valid & ~mask).any()
        assert valid.shape == mask.shape
    assert len({tuple(v[0].tolist()) for v in picks}) > 1     # a fresh draw per step
    assert task._sequences(batch, task._generator(0))["x0"].shape == (2, 8, 50)


def test_ema_follows_the_reference_schedule():
    task = DiffusionPretraining(model=TINY, ema_after=5, ema_every=2)
    with torch.no_grad():
        task.model.out.bias.fill_(1.0)
    task.update_ema(3)                       # before ema_after: a copy
    assert float(task.ema.out.bias) == 1.0
    with torch.no_grad():
        task.model.out.bias.fill_(3.0)
    task.update_ema(9)                       # odd step: no update
    assert float(task.ema.out.bias) == 1.0
    task.update_ema(10)                      # n = 4: decay 1 - 5^(-2/3)
    decay = 1 - 5 ** (-2 / 3)
    assert float(task.ema.out.bias) == pytest.approx(decay * 1.0 + (1 - decay) * 3.0)
    assert not any(p.requires_grad for p in task.ema.parameters())


def test_generation_shapes_and_units():
    task = DiffusionPretraining(model=TINY, n_steps=10)
    sensors = torch.zeros(3, 8)
    sensors[:, 6] = 1.0
    for method, n_steps in (("ddim", 4), ("ddpm", None)):
        out = task.generate(sensors, 120, method=method, n_steps=n_steps,
                            generator=torch.Generator().manual_seed(0))
        assert out.shape == (3, 120) and torch.isfinite(out).all()
        # the untrained model predicts v = 0: draws shrink towards zero, most within 100 uV
        assert (out.abs() <= 1).float().mean() > 0.5


@pytest.mark.parametrize("name", ["eegdm", "eegdm_tiny"])
def test_model_configs_build_for_any_montage(name):
    from omegaconf import OmegaConf

    from brainfm.configuration import compose_config

    cfg = OmegaConf.to_container(compose_config([f"model={name}", "task=diffusion"],
                                                "pretrain"))
    task = build_task(cfg["task"], cfg["model"], seed=0)
    assert isinstance(task, DiffusionPretraining)
    if name == "eegdm":
        assert sum(p.numel() for p in task.model.parameters()) == 5_930_753
        return
    for c in (1, 3, 19):
        x = torch.randn(2, c, 2, 200)
        sensors = torch.zeros(2, c, 8)
        sensors[..., 6] = 1.0
        assert task.model(x, torch.tensor([0, 49]), sensors).shape == x.shape


def test_task_and_model_families_must_match():
    with pytest.raises(ValueError, match="task=diffusion model=eegdm_tiny"):
        build_task({"kind": "masked_patch"}, {**TINY, "family": "diffusion"})
    with pytest.raises(ValueError, match="task.kind='gan'"):
        build_task({"kind": "gan"}, TINY)


def test_model_file_round_trip_names_its_family(tmp_path):
    torch.manual_seed(0)
    model = DiffusionDenoiser(**TINY)
    torch.nn.init.normal_(model.out.weight)
    path = save_model(model, tmp_path / "model.pt", extra={"sfreq": 200.0})
    again = from_pretrained(path)
    assert isinstance(again, DiffusionDenoiser) and again.extra == {"sfreq": 200.0}
    x, sensors = torch.randn(1, 2, 300), torch.zeros(1, 2, 8)
    torch.testing.assert_close(again(x, torch.tensor([7]), sensors),
                               model(x, torch.tensor([7]), sensors))

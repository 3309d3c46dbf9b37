"""The representation objectives' parts: structured masks, band-power targets, latent targets
and the EMA teacher, collapse statistics, and the crossed (runs x subjects) bootstrap."""
import numpy as np
import pytest
import torch

from brainfm.bench.stats import crossed_bootstrap, hierarchical_bootstrap
from brainfm.tasks.band_power import BANDS, log_band_power, visible_band_guess
from brainfm.tasks.collapse import representation_stats
from brainfm.tasks.latent_target import ema_decay_at, ema_update, latent_targets
from brainfm.tasks.masking import sample_patch_mask


def _draw(kind, ratio=0.3, shape=(64, 6, 10), channel_mask=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    return sample_patch_mask(shape, ratio, kind, channel_mask, generator=g)


def test_channel_masks_hide_whole_real_channels_and_leave_one_visible():
    cm = torch.ones(64, 6, dtype=torch.bool)
    cm[:, 4:] = False                                   # two padded channels
    mask = _draw("channel", 0.5, channel_mask=cm)
    per_channel = mask.any(dim=2)
    assert torch.equal(per_channel, mask.all(dim=2) & per_channel)   # all or nothing
    assert not mask[:, 4:].any()                        # never a padded channel
    assert (per_channel[:, :4].sum(dim=1) == 2).all()   # round(0.5 x 4 real channels)
    everything = _draw("channel", 0.99, channel_mask=cm)
    assert (everything.any(dim=2).sum(dim=1) == 3).all()  # at least one stays visible


def test_time_blocks_are_one_contiguous_run_on_every_channel():
    mask = _draw("time_block", 0.3)
    assert torch.equal(mask, mask[:, :1].expand_as(mask))       # same on every channel
    for row in mask[:, 0]:
        idx = torch.nonzero(row).flatten()
        assert len(idx) == 3 and (idx.diff() == 1).all()
    starts = {int(torch.nonzero(r).flatten()[0]) for r in mask[:, 0]}
    assert len(starts) > 3                              # the position is drawn


def test_channel_time_mixes_both_and_single_channel_samples_get_time_blocks():
    mask = _draw("channel_time", 0.3)
    whole_channels = mask.all(dim=2).any(dim=1)
    assert 10 < int(whole_channels.sum()) < 54           # about half of each
    one = _draw("channel", 0.5, shape=(8, 1, 10))
    assert (one.sum(dim=(1, 2)) == 5).all()


def test_masks_are_reproducible_and_bernoulli_draws_are_unchanged():
    assert torch.equal(_draw("channel_time", seed=3), _draw("channel_time", seed=3))
    g = torch.Generator().manual_seed(5)
    expected = torch.rand(4, 6, 10, generator=torch.Generator().manual_seed(5)) < 0.3
    assert torch.equal(sample_patch_mask((4, 6, 10), 0.3, "bernoulli", generator=g), expected)
    with pytest.raises(ValueError, match="mask kind"):
        _draw("blocks")


def test_log_band_power_finds_the_band_of_a_sine():
    t = torch.arange(200) / 200.0
    for k, (name, lo, hi) in enumerate(BANDS):
        sine = torch.sin(2 * torch.pi * (lo + hi) / 2 * t)
        power = log_band_power(sine[None], 200.0)[0]
        assert int(power.argmax()) == k, name
    ten_times = log_band_power(10 * torch.sin(2 * torch.pi * 10 * t)[None], 200.0)
    once = log_band_power(torch.sin(2 * torch.pi * 10 * t)[None], 200.0)
    assert torch.allclose(ten_times[0, 2] - once[0, 2], torch.tensor(float(np.log(100.0))), atol=1e-4)


def test_visible_band_guess_reads_visible_patches_only():
    power = torch.randn(2, 3, 4, 5)
    mask = torch.zeros(2, 3, 4, dtype=torch.bool)
    mask[0, 0, :2] = True            # half of channel 0 hidden
    mask[1, 1] = True                # channel 1 hidden throughout
    guess = visible_band_guess(power, mask)
    assert torch.allclose(guess[0, 0, 0], power[0, 0, 2:].mean(dim=0))
    others = power[1][~mask[1]].mean(dim=0)
    assert torch.allclose(guess[1, 1, 0], others, atol=1e-6)
    changed = power.clone()
    changed[mask] += 100.0           # what is hidden cannot move the guess
    assert torch.allclose(visible_band_guess(changed, mask), guess)


def test_latent_targets_average_normalised_top_layers():
    layers = [torch.randn(2, 3, 4, 8) * s + 5 for s in (1.0, 10.0, 100.0)]
    target = latent_targets(layers, 2)
    assert target.shape == (2, 3, 4, 8)
    assert torch.allclose(target.mean(dim=-1), torch.zeros(2, 3, 4), atol=1e-5)
    with pytest.raises(ValueError, match="latent_top_k"):
        latent_targets(layers, 4)


def test_ema_teacher_moves_towards_the_student_by_the_decay():
    student, teacher = torch.nn.Linear(3, 3), torch.nn.Linear(3, 3)
    before = teacher.weight.detach().clone()
    ema_update(teacher, student, 0.9)
    assert torch.allclose(teacher.weight, 0.9 * before + 0.1 * student.weight)
    assert ema_decay_at(0, 100, 0.99, 0.999) == 0.99
    assert ema_decay_at(100, 100, 0.99, 0.999) == pytest.approx(0.999)


def test_collapse_statistics_flag_a_collapsed_representation():
    rng = np.random.default_rng(0)
    healthy = representation_stats(torch.as_tensor(rng.normal(size=(200, 16))))
    assert healthy["effective_rank"] > 12 and not healthy["collapsed"]
    line = rng.normal(size=(200, 1)) * rng.normal(size=(1, 16))
    assert representation_stats(torch.as_tensor(line))["collapsed"]
    constant = torch.ones(200, 16) + 1e-6 * torch.as_tensor(rng.normal(size=(200, 16)))
    assert representation_stats(constant)["collapsed"]


def test_crossed_bootstrap_carries_run_to_run_variance():
    """A difference that one lucky run makes is significant when runs are resampled within
    subjects (nested), not when they are resampled as shared units (crossed)."""
    rng = np.random.default_rng(1)
    subjects = rng.normal(0.6, 0.05, size=(40, 1))
    runs = np.array([0.12, -0.01, 0.0])                    # one lucky pretraining run
    a = subjects + runs + rng.normal(0, 0.01, size=(40, 3))
    b = subjects + rng.normal(0, 0.01, size=(40, 3))
    est, lo, hi, p = crossed_bootstrap(a, b)
    assert est == pytest.approx(0.037, abs=0.01)
    assert lo < 0 < hi and p > 0.05
    _, nested_lo, _ = hierarchical_bootstrap(a, b)
    assert nested_lo > 0                                   # what ignoring the runs would say
    steady = subjects + 0.04 + rng.normal(0, 0.01, size=(40, 3))
    assert crossed_bootstrap(steady, b)[3] < 0.01

"""DDPM arithmetic: the cosine schedule's closed form, v algebra, mu-law, full-chain sampling."""
from __future__ import annotations

import math

import pytest
import torch

from brainfm.tasks.ddpm import (CosineSchedule, inverse_staged_mu_law, sample,
                                staged_mu_law)


def _f(u: float) -> float:
    return math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2


@pytest.mark.parametrize("T", [50, 1000])
def test_cosine_schedule_closed_form(T):
    sch = CosineSchedule(T)
    abar = sch.alphas_cumprod.double()
    # abar_t = f((t+1)/T) / f(0) wherever the 0.999 cap on beta is not reached (all but t=T-1)
    expected = torch.tensor([_f((t + 1) / T) / _f(0) for t in range(T - 1)], dtype=torch.float64)
    torch.testing.assert_close(abar[:-1], expected, rtol=2e-5, atol=1e-7)
    assert float(sch.betas[-1]) == pytest.approx(0.999)       # capped, as diffusers
    assert bool((abar[1:] < abar[:-1]).all())
    if T == 50:  # what the reference's early stop leaves: sqrt(1 - abar_0) ~ 0.042 (~4 uV)
        assert math.sqrt(1 - abar[0]) == pytest.approx(0.0417, abs=5e-4)


def test_v_target_algebra():
    torch.manual_seed(0)
    sch = CosineSchedule(50, "v_prediction")
    x0, noise = torch.randn(4, 3, 100), torch.randn(4, 3, 100)
    t = torch.randint(0, 50, (4, 3))
    x_t = sch.add_noise(x0, noise, t)
    v = sch.target(x0, noise, t)
    a = sch.alphas_cumprod[t].sqrt()[..., None]
    s = (1 - sch.alphas_cumprod[t]).sqrt()[..., None]
    torch.testing.assert_close(v, a * noise - s * x0)
    torch.testing.assert_close(x_t, a * x0 + s * noise)
    # v and x_t determine x0 and the noise again
    rx0, rnoise = sch.to_x0_eps(v, x_t, t)
    torch.testing.assert_close(rx0, x0, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(rnoise, noise, atol=1e-5, rtol=1e-5)
    # the other prediction types recover the same pair from their own targets
    for kind in ("epsilon", "sample"):
        other = CosineSchedule(50, kind)
        rx0, _ = other.to_x0_eps(other.target(x0, noise, t), x_t, t)
        torch.testing.assert_close(rx0, x0, atol=2e-3, rtol=1e-3)
    with pytest.raises(ValueError, match="prediction_type='x'"):
        CosineSchedule(50, "x")


def test_staged_mu_law_round_trip():
    x = torch.cat([torch.linspace(-50, 50, 2001), torch.tensor([-1.0, 1.0, 0.0])])
    y = staged_mu_law(x)
    inner = x.abs() <= 1
    assert torch.equal(y[inner], x[inner])                       # identity within 100 uV
    assert bool((y[~inner].abs() < x[~inner].abs()).all())       # compressed beyond
    assert float(staged_mu_law(torch.tensor(1.0 + 1e-6))) == pytest.approx(1.0, abs=1e-5)
    assert float(staged_mu_law(torch.tensor(50.0))) == pytest.approx(
        math.log1p(255 * 50) / math.log1p(255))
    torch.testing.assert_close(inverse_staged_mu_law(y), x, rtol=1e-5, atol=1e-5)
    assert bool((torch.diff(y[:2001]) > 0).all())                # monotone


def _oracle(sch: CosineSchedule, x0: torch.Tensor):
    """A predictor that knows the clean signal: the ideal network."""
    def predict(x_t, t):
        a = sch.alphas_cumprod[t].sqrt()[:, None]
        s = (1 - sch.alphas_cumprod[t]).sqrt()[:, None]
        return (a * x_t - x0) / s                                # v with x0 known
    return predict


@pytest.mark.parametrize("method,n_steps", [("ddpm", None), ("ddim", None), ("ddim", 10)])
def test_sampling_runs_the_full_chain(method, n_steps):
    """With the ideal predictor every sampler ends exactly at x0 (the last step, t=0 -> x0,
    is taken; stopping at t=1 as the reference does would leave ~0.04 of noise)."""
    sch = CosineSchedule(50)
    x0 = 0.5 * torch.sin(torch.linspace(0, 20, 300))[None].repeat(3, 1)
    calls = []
    predict = _oracle(sch, x0)
    out = sample(lambda x, t: (calls.append(int(t[0])), predict(x, t))[1], (3, 300), sch,
                 method, n_steps, generator=torch.Generator().manual_seed(0))
    assert out.shape == (3, 300)
    assert calls[0] == 49 and calls[-1] == 0
    assert len(calls) == (50 if n_steps is None else 10)
    torch.testing.assert_close(out, x0, atol=1e-4, rtol=1e-4)


def test_clipping_is_an_option_off_by_default():
    sch = CosineSchedule(50)
    x0 = torch.full((2, 64), 1.5)
    g = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    free = sample(_oracle(sch, x0), (2, 64), sch, "ddim", generator=g())
    clipped = sample(_oracle(sch, x0), (2, 64), sch, "ddim", clip=1.0, generator=g())
    torch.testing.assert_close(free, x0, atol=1e-4, rtol=1e-4)
    assert float(clipped.max()) <= 1.0 + 1e-5
    with pytest.raises(ValueError, match="method='ancestral'"):
        sample(_oracle(sch, x0), (2, 64), sch, "ancestral")

"""DDPM arithmetic: the cosine noise schedule, prediction targets, and DDPM/DDIM sampling
over the whole chain (the staged mu-law is the model's: brainfm.models.transforms).

Timesteps are integers 0..T-1 as in the reference (diffusers' DDPMScheduler with
``squaredcos_cap_v2``): x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, with
abar_t = prod_{s<=t} (1 - beta_s), beta_s = min(1 - f((s+1)/T) / f(s/T), 0.999) and
f(u) = cos((u + 0.008) / 1.008 * pi/2)^2. Where no beta is capped this is the closed form
abar_t = f((t+1)/T) / f(0). Sampling ends with the step from t = 0 to the clean signal
(the reference stops at t = 1 and leaves sqrt(1 - abar_0) ~ 0.04, i.e. ~4 uV, of noise).
"""
from __future__ import annotations

import math
from typing import Callable

import torch

# the mu-law is the model's input transform (brainfm.models.transforms); named here too
# because the DDPM recipe applies it
from ..models.transforms import inverse_staged_mu_law, staged_mu_law

PREDICTION_TYPES = ("v_prediction", "epsilon", "sample")


def cosine_alpha_bar(u: torch.Tensor) -> torch.Tensor:
    """f(u) = cos((u + 0.008) / 1.008 * pi / 2)^2 for u in [0, 1] (Nichol & Dhariwal)."""
    return torch.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2


class CosineSchedule:
    """The T-step cosine schedule and the algebra between x_0, noise, v and x_t."""

    def __init__(self, n_steps: int = 50, prediction_type: str = "v_prediction",
                 max_beta: float = 0.999):
        if prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"prediction_type={prediction_type!r}; use one of "
                             f"{', '.join(PREDICTION_TYPES)}")
        if n_steps < 2:
            raise ValueError(f"n_steps={n_steps}: a diffusion needs at least 2 steps")
        self.n_steps, self.prediction_type = n_steps, prediction_type
        s = torch.arange(n_steps, dtype=torch.float64)
        f = cosine_alpha_bar
        betas = (1 - f((s + 1) / n_steps) / f(s / n_steps)).clamp(max=max_beta)
        self.betas = betas.float()
        self.alphas_cumprod = torch.cumprod(1 - betas, 0).float()

    def _coef(self, t: torch.Tensor, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(sqrt(abar_t), sqrt(1 - abar_t)) shaped to broadcast against ``like``."""
        abar = self.alphas_cumprod.to(like.device)[t.long()]
        abar = abar.reshape(*t.shape, *([1] * (like.dim() - t.dim()))).to(like.dtype)
        return abar.sqrt(), (1 - abar).sqrt()

    def add_noise(self, x0, noise, t):
        a, s = self._coef(t, x0)
        return a * x0 + s * noise

    def target(self, x0, noise, t):
        """What the network learns to output for ``prediction_type``."""
        if self.prediction_type == "epsilon":
            return noise
        if self.prediction_type == "sample":
            return x0
        a, s = self._coef(t, x0)
        return a * noise - s * x0

    def to_x0_eps(self, pred, x_t, t) -> tuple[torch.Tensor, torch.Tensor]:
        """Recover (x_0, noise) from a prediction of ``prediction_type`` at x_t."""
        a, s = self._coef(t, x_t)
        if self.prediction_type == "v_prediction":
            return a * x_t - s * pred, a * pred + s * x_t
        if self.prediction_type == "epsilon":
            return (x_t - s * pred) / a, pred
        return pred, (x_t - a * pred) / s.clamp_min(1e-12)


Predictor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@torch.no_grad()
def sample(predict: Predictor, shape, schedule: CosineSchedule, method: str = "ddpm",
           n_steps: int | None = None, clip: float | None = None,
           generator: torch.Generator | None = None, device="cpu") -> torch.Tensor:
    """Draw x_0 from noise by the full reverse chain, ending at t = 0 -> x_0.

    ``predict(x_t, t)`` returns the network's prediction for x_t of ``shape`` at steps ``t``
    (shape[0],). ``method``: ``ddpm`` (ancestral, the posterior variance of diffusers'
    "fixed_small") or ``ddim`` (deterministic, eta = 0; ``n_steps`` < T spaces the steps
    evenly, always including T-1 and 0). ``clip`` bounds the predicted x_0 (off by default;
    the reference clips at 1, i.e. +-100 uV).
    """
    if method not in ("ddpm", "ddim"):
        raise ValueError(f"method={method!r}; use 'ddpm' or 'ddim'")
    T = schedule.n_steps
    if method == "ddpm" or not n_steps or n_steps >= T:
        steps = list(range(T - 1, -1, -1))
    else:
        steps = sorted({round(v) for v in torch.linspace(0, T - 1, n_steps).tolist()},
                       reverse=True)
    abar = schedule.alphas_cumprod.to(device)
    x = torch.randn(*shape, generator=generator).to(device)
    for i, t in enumerate(steps):
        t_prev = steps[i + 1] if i + 1 < len(steps) else -1
        tt = torch.full((shape[0],), t, dtype=torch.long, device=device)
        x0, eps = schedule.to_x0_eps(predict(x, tt), x, tt)
        if clip is not None:
            x0 = x0.clamp(-clip, clip)
            if method == "ddim":
                eps = (x - abar[t].sqrt() * x0) / (1 - abar[t]).sqrt()
        a_prev = abar[t_prev] if t_prev >= 0 else torch.ones((), device=device)
        if method == "ddim":
            x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
            continue
        a_t, beta_t = abar[t], 1 - abar[t] / a_prev                 # one step: t -> t - 1
        mean = (a_prev.sqrt() * beta_t / (1 - a_t)) * x0 \
            + ((1 - beta_t).sqrt() * (1 - a_prev) / (1 - a_t)) * x
        if t_prev >= 0:
            var = ((1 - a_prev) / (1 - a_t) * beta_t).clamp_min(1e-20)
            mean = mean + var.sqrt() * torch.randn(*shape, generator=generator).to(device)
        x = mean
    return x


__all__ = ["CosineSchedule", "PREDICTION_TYPES", "cosine_alpha_bar", "inverse_staged_mu_law",
           "sample", "staged_mu_law"]

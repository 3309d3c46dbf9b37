"""DDPM pretraining of the diffusion denoiser (EEGDM's recipe, on brainfm's corpus).

Every real channel of every window is one sequence: staged mu-law (identity within one
store unit, i.e. 100 uV for EEG/iEEG and 1000 fT(/cm) for MEG; compressed beyond), a random
crop of ``crop_len`` samples, a step t uniform in 0..T-1 per sequence, cosine-schedule noise,
and MSE against the prediction target (v by default). Batches come shuffled from brainfm's
sampler (the reference never shuffles). Noise, steps and crops are drawn from generators
seeded by (seed, step, rank), so a resumed run continues as an uninterrupted one would.

An exponential moving average of the weights (``ema``) is kept as the reference's EMA
(decay min(0.999, 1 - (1 + n)^(-2/3)) after step 100, every 10 steps; a copy before);
validation scores the raw and the EMA weights on the same noise beside the all-zeros
predictor, whose v-MSE is what the zero-initialised untrained model scores.
"""
from __future__ import annotations

import copy

import torch

from ..models.diffusion_denoiser import DiffusionDenoiser
from .base import PretrainingTask
from ..models.transforms import inverse_staged_mu_law, staged_mu_law
from .ddpm import CosineSchedule, sample


class DiffusionPretraining(PretrainingTask):
    def __init__(self, model: dict, n_steps: int = 50, prediction_type: str = "v_prediction",
                 mu: float = 255.0, crop_len: int | None = 1000,
                 channels_per_window: int | None = None, lr: float = 1e-4,
                 weight_decay: float = 0.0, min_lr: float = 1e-4, warmup_steps: int = 0,
                 total_steps: int | None = None, ema_decay: float = 0.999,
                 ema_after: int = 100, ema_every: int = 10, seed: int = 0):
        super().__init__()
        self.save_hyperparameters()
        self.model = DiffusionDenoiser(**self.backbone_config(model))
        self.ema = copy.deepcopy(self.model).requires_grad_(False)
        self.schedule = CosineSchedule(n_steps, prediction_type)
        self.heldout: dict[str, dict] = {}
        self.drawn: dict[int, int] = {}

    def ema_model(self):
        return self.ema

    # ---- data -> sequences -----------------------------------------------------------------
    def _generator(self, stream: int) -> torch.Generator:
        return torch.Generator().manual_seed((self.hparams.seed * 1_000_003 + stream)
                                             % (2 ** 63 - 1))

    def _sequences(self, batch: dict, g: torch.Generator) -> dict:
        """Model-space signals (B, C, L) cropped to ``crop_len``, their steps, noise, x_t,
        and ``valid``: the real channels, or ``channels_per_window`` of them drawn at random
        (the cost of a step then no longer grows with the montage)."""
        x = batch["x"].reshape(*batch["x"].shape[:2], -1)
        length = x.shape[-1]
        crop = self.hparams.crop_len
        if crop and crop < length:
            start = int(torch.randint(0, length - crop + 1, (1,), generator=g))
            x = x[..., start:start + crop]
        x0 = staged_mu_law(x.float(), self.hparams.mu)
        b, c, _ = x0.shape
        t = torch.randint(0, self.schedule.n_steps, (b, c), generator=g).to(self.device)
        noise = torch.randn(x0.shape, generator=g).to(self.device)
        valid = batch["channel_mask"].bool()
        k = self.hparams.channels_per_window
        if k and k < c:
            score = torch.rand(b, c, generator=g).to(self.device).masked_fill(~valid, 2.0)
            valid = valid & (score.argsort(-1).argsort(-1) < k)
        return {"x0": x0, "t": t, "noise": noise, "valid": valid,
                "x_t": self.schedule.add_noise(x0, noise, t)}

    def _errors(self, net, batch: dict, seq: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Per sequence (B, C): mean squared error of ``net``'s prediction and of predicting
        zeros (0 on padded and unsampled channels)."""
        valid = seq["valid"]
        target = self.schedule.target(seq["x0"], seq["noise"], seq["t"])
        pred = net(seq["x_t"], seq["t"], batch["sensors"], valid).float()
        keep = valid.to(target.dtype)
        return ((pred - target) ** 2).mean(-1) * keep, (target ** 2).mean(-1) * keep

    # ---- steps -----------------------------------------------------------------------------
    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        step = int(self.global_step)
        seq = self._sequences(batch, self._generator(2 * step + 1 + 1000 * self.global_rank))
        err, zero = self._errors(self.model, batch, seq)
        n = seq["valid"].sum().clamp_min(1)
        loss, zero = err.sum() / n, zero.sum() / n
        self.count_drawn(batch)
        bs = batch["x"].shape[0]
        self.log("train/loss", loss, prog_bar=True, batch_size=bs)
        self.log("train/mse_vs_zero", loss.detach() / zero.clamp_min(1e-12), batch_size=bs)
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        self.update_ema(int(self.global_step))

    @torch.no_grad()
    def update_ema(self, step: int) -> None:
        """The reference's EMA schedule: copy the weights until ``ema_after`` steps, then
        every ``ema_every`` steps blend with decay min(ema_decay, 1 - (1 + n)^(-2/3))."""
        hp = self.hparams
        online = getattr(self.model, "_orig_mod", self.model)  # under torch.compile
        if step <= hp.ema_after:
            self.ema.load_state_dict(online.state_dict())
            return
        if step % hp.ema_every:
            return
        n = step - hp.ema_after - 1
        decay = min(hp.ema_decay, max(0.0, 1 - (1 + n) ** (-2 / 3)))
        for e, p in zip(self.ema.parameters(), online.parameters()):
            e.lerp_(p.detach(), 1 - decay)

    def on_validation_epoch_start(self) -> None:
        self._val_sums: dict[int, torch.Tensor] = {}

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        seq = self._sequences(batch, self._generator(-(batch_idx + 1)))  # same every time
        with torch.no_grad():
            raw, zero = self._errors(self.model, batch, seq)
            ema, _ = self._errors(self.ema, batch, seq)
        per_seq = torch.stack([raw, ema, zero, seq["valid"].to(raw.dtype)], -1)
        n = seq["valid"].sum().clamp_min(1)
        bs = batch["x"].shape[0]
        for name, value in (("loss", raw.sum() / n), ("loss_ema", ema.sum() / n),
                            ("zero_baseline", zero.sum() / n),
                            ("mse_vs_zero", raw.sum() / zero.sum().clamp_min(1e-12)),
                            ("ema_mse_vs_zero", ema.sum() / zero.sum().clamp_min(1e-12))):
            self.log(f"val/{name}", value, batch_size=bs, sync_dist=True,
                     prog_bar=name == "loss")
        for code in batch["dataset"].unique().tolist():  # sums over sequences, per dataset
            rows = batch["dataset"] == code
            acc = self._val_sums.setdefault(code, torch.zeros(4, dtype=torch.float64,
                                                              device=self.device))
            acc += per_seq[rows].sum(dim=(0, 1)).double()

    def on_validation_epoch_end(self) -> None:
        names = self.dataset_names()
        for code, sums in sorted(self._val_sums.items()):
            if self.trainer.world_size > 1:
                sums = self.trainer.strategy.reduce(sums, reduce_op="sum")
            raw, ema, zero, _ = sums.tolist()
            row = {"model_vs_zero": raw / max(zero, 1e-12), "ema_vs_zero": ema / max(zero, 1e-12)}
            name = names.get(code, str(code))
            self.heldout[name] = row
            for key, value in row.items():
                self.log(f"val_by_dataset/{name}/{key}", value)

    # ---- generation ------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, sensors: torch.Tensor, length: int, method: str = "ddpm",
                 n_steps: int | None = None, clip: float | None = None, use_ema: bool = True,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Signals (M, length) in store units for channels with ``sensors`` (M, 8), drawn by
        the full reverse chain and mapped back through the inverse mu-law."""
        net = self.ema if use_ema else self.model
        net.eval()
        code = sensors.to(self.device, torch.float32)
        x0 = sample(lambda x, t: net.denoise(x, t, code), (code.shape[0], length),
                    self.schedule, method, n_steps, clip, generator, self.device)
        return inverse_staged_mu_law(x0, self.hparams.mu)


__all__ = ["DiffusionPretraining"]

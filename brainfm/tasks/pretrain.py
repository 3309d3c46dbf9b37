"""Masked patch reconstruction: the criss-cross backbone's pretraining task (CBraMod).

Hide a share of (channel, patch) cells, reconstruct their raw samples, score MSE on the hidden
cells only (optionally plus a spectral term). Masks and dropout are drawn from generators
seeded by (seed, global step), so a run resumed from a checkpoint continues exactly as an
uninterrupted one would.

Every validation round scores the model beside the trivial predictors of
:mod:`brainfm.tasks.trivial` on the same hidden patches of each held-out dataset, so that
"the loss falls" is never mistaken for "the model learned": ``val_by_dataset/<name>/...``
in metrics.csv, and :attr:`MaskedPatchPretraining.heldout` for the exported model.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..models.criss_cross import CrissCrossTransformer
from .base import PretrainingTask
from .masking import sample_patch_mask
from .trivial import PREDICTORS, trivial_predictions

LOSS_NORMS = ("none", "sample")


class MaskedPatchPretraining(PretrainingTask):
    def __init__(self, model: dict, mask_ratio: float = 0.5, mask_kind: str = "bernoulli",
                 spectral_loss_weight: float = 0.0, lr: float = 5e-4,
                 weight_decay: float = 0.05, min_lr: float = 1e-5, warmup_steps: int = 0,
                 total_steps: int | None = None, seed: int = 0, loss_norm: str = "none"):
        super().__init__()
        if loss_norm not in LOSS_NORMS:
            raise ValueError(f"loss_norm={loss_norm!r}; use one of {LOSS_NORMS}")
        self.save_hyperparameters()
        self.model = CrissCrossTransformer(**{**dict(model), "head": "reconstruction"})
        self.heldout: dict[str, dict] = {}       # last validation: per dataset, see below
        self.drawn: dict[int, int] = {}          # training windows drawn per dataset code

    # ---- one step ---------------------------------------------------------------------------
    def _mask(self, batch: dict, stream: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(
            (self.hparams.seed * 1_000_003 + stream) % (2 ** 63 - 1))
        b, c, n, _ = batch["x"].shape
        return sample_patch_mask((b, c, n), self.hparams.mask_ratio, self.hparams.mask_kind,
                                 batch["channel_mask"], generator=g, device=self.device)

    def _losses(self, batch: dict, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        x = batch["x"]
        pred = self.model(x, batch["sensors"], batch["channel_mask"], mask=mask)
        target, recon = x[mask], pred[mask].float()
        out = {"pred": pred, "mse": F.mse_loss(recon, target),
               "zero_baseline": target.pow(2).mean()}
        # < 1 means better than predicting zeros for every hidden patch
        out["mse_vs_zero"] = out["mse"].detach() / out["zero_baseline"].clamp_min(1e-12)
        loss = out["mse"]
        if self.hparams.loss_norm == "sample":
            # each window's error relative to its own hidden signal power: datasets whose
            # amplitudes differ tenfold weigh the same
            m = mask[..., None].to(pred.dtype)
            err = ((pred.float() - x) ** 2 * m).sum(dim=(1, 2, 3))
            power = (x ** 2 * m).sum(dim=(1, 2, 3))
            has = m.sum(dim=(1, 2, 3)) > 0
            loss = (err[has] / power[has].clamp_min(1e-6)).mean()
        if self.hparams.spectral_loss_weight > 0:
            spec = lambda v: torch.fft.rfft(v, dim=-1, norm="forward").abs()  # noqa: E731
            out["spectral"] = F.mse_loss(spec(recon), spec(target))
            loss = loss + self.hparams.spectral_loss_weight * out["spectral"]
        out["loss"] = loss
        return out

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        step = int(self.global_step)
        torch.manual_seed((self.hparams.seed + 7919 * step + 104_729 * self.global_rank)
                          % (2 ** 63 - 1))  # dropout: a function of the step, for resume
        out = self._losses(batch, self._mask(batch, 2 * step + 1 + 1000 * self.global_rank))
        bs = batch["x"].shape[0]
        self.count_drawn(batch)
        self.log("train/loss", out["loss"], prog_bar=True, batch_size=bs)
        self.log("train/mse", out["mse"], batch_size=bs)
        self.log("train/zero_baseline", out["zero_baseline"], batch_size=bs)
        self.log("train/mse_vs_zero", out["mse_vs_zero"], batch_size=bs)
        return out["loss"]

    def on_validation_epoch_start(self) -> None:
        self._val_sums: dict[int, torch.Tensor] = {}
        self._val_channels: dict[int, int] = {}

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        mask = self._mask(batch, -(batch_idx + 1))  # the same masks at every validation
        out = self._losses(batch, mask)
        self._accumulate_per_dataset(batch, mask, out["pred"])
        bs = batch["x"].shape[0]
        self.log("val/loss", out["loss"], prog_bar=True, batch_size=bs, sync_dist=True)
        self.log("val/mse", out["mse"], batch_size=bs, sync_dist=True)
        self.log("val/zero_baseline", out["zero_baseline"], batch_size=bs, sync_dist=True)
        self.log("val/mse_vs_zero", out["mse_vs_zero"], batch_size=bs, sync_dist=True)

    def _accumulate_per_dataset(self, batch: dict, mask: torch.Tensor,
                                pred: torch.Tensor) -> None:
        """Squared error of the model and of each trivial predictor on hidden patches, summed
        per dataset (``zeros``' error is the hidden signal's power)."""
        with torch.no_grad():
            x, cm = batch["x"], batch["channel_mask"]
            hidden = (mask & cm[:, :, None])[..., None].to(x.dtype)
            preds = {"model": pred.float(), **trivial_predictions(x, mask, cm)}
            errs = torch.stack([((p - x) ** 2 * hidden).sum(dim=(1, 2, 3))
                                for p in preds.values()], dim=1)      # (B, 1 + predictors)
            channels = cm.sum(dim=1)
            for code in batch["dataset"].unique().tolist():
                rows = batch["dataset"] == code
                acc = self._val_sums.setdefault(
                    code, torch.zeros(errs.shape[1], dtype=torch.float64, device=self.device))
                acc += errs[rows].sum(dim=0).double()
                self._val_channels[code] = max(self._val_channels.get(code, 0),
                                               int(channels[rows].max()))

    def on_validation_epoch_end(self) -> None:
        """Per held-out dataset: each predictor's MSE relative to zeros', the best trivial
        predictor (the lowest of zeros, spatial and temporal over the dataset's hidden
        patches), and the model relative to it (< 1: the model beats it)."""
        names = self.dataset_names()
        columns = ("model", *PREDICTORS)
        worst = None
        for code, sums in sorted(self._val_sums.items()):
            if self.trainer.world_size > 1:
                sums = self.trainer.strategy.reduce(sums, reduce_op="sum")
            name = names.get(code, str(code))
            err = dict(zip(columns, sums.tolist()))
            zero = max(err["zeros"], 1e-12)
            multichannel = self._val_channels.get(code, 1) > 1
            best = min(PREDICTORS, key=lambda k: err[k])
            row = {f"{k}_vs_zero": err[k] / zero for k in columns if k != "zeros"}
            row.update(best_trivial=best, model_vs_best_trivial=err["model"] / max(err[best], 1e-12),
                       multichannel=multichannel)
            self.heldout[name] = row
            for key, value in row.items():
                if not isinstance(value, (bool, str)):
                    self.log(f"val_by_dataset/{name}/{key}", value, sync_dist=False)
            self.log(f"val_by_dataset/{name}_mse_vs_zero", row["model_vs_zero"])
            if multichannel:
                worst = max(worst or 0.0, row["model_vs_best_trivial"])
        if worst is not None:  # the gate: every multichannel dataset must be below 1
            self.log("val/worst_model_vs_best_trivial", worst, prog_bar=True)
        for name, share in self.drawn_mix().items():
            self.log(f"train_mix/{name}", share)


"""Masked patch reconstruction: the criss-cross backbone's pretraining task (CBraMod).

Hide a share of (channel, patch) cells, reconstruct their raw samples, score MSE on the hidden
cells only (optionally plus a spectral term). Masks and dropout are drawn from generators
seeded by (seed, global step), so a run resumed from a checkpoint continues exactly as an
uninterrupted one would.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..models.criss_cross import CrissCrossTransformer
from .base import PretrainingTask
from .masking import sample_patch_mask


class MaskedPatchPretraining(PretrainingTask):
    def __init__(self, model: dict, mask_ratio: float = 0.5, mask_kind: str = "bernoulli",
                 spectral_loss_weight: float = 0.0, lr: float = 5e-4,
                 weight_decay: float = 0.05, min_lr: float = 1e-5, warmup_steps: int = 0,
                 total_steps: int | None = None, seed: int = 0):
        super().__init__()
        self.save_hyperparameters()
        self.model = CrissCrossTransformer(**{**dict(model), "head": "reconstruction"})

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
        self.log("train/loss", out["loss"], prog_bar=True, batch_size=bs)
        self.log("train/mse", out["mse"], batch_size=bs)
        self.log("train/zero_baseline", out["zero_baseline"], batch_size=bs)
        self.log("train/mse_vs_zero", out["mse_vs_zero"], batch_size=bs)
        return out["loss"]

    def on_validation_epoch_start(self) -> None:
        self._val_sums: dict[int, torch.Tensor] = {}

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
        """Squared error and squared signal on hidden patches, summed per dataset."""
        with torch.no_grad():
            m = mask[..., None].to(pred.dtype)
            err = ((pred.float() - batch["x"]) ** 2 * m).sum(dim=(1, 2, 3))
            sig = (batch["x"] ** 2 * m).sum(dim=(1, 2, 3))
            for code in batch["dataset"].unique().tolist():
                rows = batch["dataset"] == code
                acc = self._val_sums.setdefault(code, torch.zeros(2, device=self.device))
                acc += torch.stack([err[rows].sum(), sig[rows].sum()])

    def on_validation_epoch_end(self) -> None:
        names = getattr(getattr(self.trainer, "datamodule", None), "dataset_names", None) or {}
        for code, (err, sig) in sorted(self._val_sums.items()):
            name = names.get(code, str(code))
            self.log(f"val_by_dataset/{name}_mse_vs_zero", err / sig.clamp_min(1e-12),
                     sync_dist=True)

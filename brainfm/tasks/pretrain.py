"""Masked patch pretraining of the criss-cross backbone: reconstruction (CBraMod), latent
prediction (data2vec / JEPA style) or a spectral target.

Hide a share of (channel, patch) cells (independently, or whole channels and time blocks:
:mod:`brainfm.tasks.masking`), then score one objective on the hidden cells only:

- ``reconstruction``: MSE of their raw samples (optionally plus a spectral term);
- ``latent``: MSE of a light predictor's output against an EMA teacher's representations of
  the whole window (:mod:`brainfm.tasks.latent_target`);
- ``band_power``: MSE of their log band power (:mod:`brainfm.tasks.band_power`);

``band_power_weight`` adds the spectral target to any objective as an auxiliary head. Masks
and dropout are drawn from generators seeded by (seed, global step), so a run resumed from a
checkpoint continues exactly as an uninterrupted one would.

Every validation round scores the model beside the trivial predictors of
:mod:`brainfm.tasks.trivial` on the same hidden patches of each held-out dataset (for the
reconstruction objective), so that "the loss falls" is never mistaken for "the model
learned": ``val_by_dataset/<name>/...`` in metrics.csv, and
:attr:`MaskedPatchPretraining.heldout` for the exported model. Every objective's pooled
features of the held-out windows are watched for collapse (:mod:`brainfm.tasks.collapse`).
"""
from __future__ import annotations

import copy
import logging

import torch
import torch.nn.functional as F
from torch import nn

from ..models.criss_cross import CrissCrossTransformer
from ..models.heads import masked_mean
from .band_power import BANDS, log_band_power, visible_band_guess
from .base import PretrainingTask
from .collapse import representation_stats
from .latent_target import LatentPredictor, ema_decay_at, ema_update, latent_targets
from .masking import sample_patch_mask
from .trivial import PREDICTORS, hidden_errors

LOSS_NORMS = ("none", "sample")
OBJECTIVES = ("reconstruction", "latent", "band_power")
log = logging.getLogger(__name__)


class MaskedPatchPretraining(PretrainingTask):
    OBJECTIVES = OBJECTIVES

    @classmethod
    def backbone_config(cls, model: dict) -> dict:
        return {**super().backbone_config(model), "head": "reconstruction"}

    def pretext(self) -> dict:
        hp = self.hparams
        return {"target": hp.objective, "band_power_weight": float(hp.band_power_weight),
                "mask_kind": hp.mask_kind, "mask_ratio": float(hp.mask_ratio)}

    def __init__(self, model: dict, mask_ratio: float = 0.5, mask_kind: str = "bernoulli",
                 spectral_loss_weight: float = 0.0, lr: float = 5e-4,
                 weight_decay: float = 0.05, min_lr: float = 1e-5, warmup_steps: int = 0,
                 total_steps: int | None = None, seed: int = 0, loss_norm: str = "none",
                 objective: str = "reconstruction", band_power_weight: float = 0.0,
                 latent_top_k: int = 2, ema_decay: float = 0.99, ema_decay_end: float = 0.999):
        super().__init__()
        if loss_norm not in LOSS_NORMS:
            raise ValueError(f"loss_norm={loss_norm!r}; use one of {LOSS_NORMS}")
        if objective not in OBJECTIVES:
            raise ValueError(f"task.objective={objective!r}; use one of {', '.join(OBJECTIVES)}")
        self.save_hyperparameters()
        self.model = CrissCrossTransformer(**self.backbone_config(model))
        d = self.model.d_model
        self.teacher = self.predictor = self.band_head = None
        if objective == "latent":
            self.teacher = copy.deepcopy(self.model).requires_grad_(False).eval()
            self.predictor = LatentPredictor(d)
        if objective == "band_power" or band_power_weight > 0:
            # a correction to the visible-patch guess, starting at zero: like the mean fill
            # of reconstruction, the head starts at the trivial bar and learns what differs
            self.band_head = nn.Linear(d, len(BANDS))
            nn.init.zeros_(self.band_head.weight)
            nn.init.zeros_(self.band_head.bias)
        self.heldout: dict[str, dict] = {}       # last validation: per dataset, see below
        self.representation: dict = {}           # last validation: collapse statistics
        self.drawn: dict[int, int] = {}          # training windows drawn per dataset code

    # ---- one step ---------------------------------------------------------------------------
    def _mask(self, batch: dict, stream: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(
            (self.hparams.seed * 1_000_003 + stream) % (2 ** 63 - 1))
        b, c, n, _ = batch["x"].shape
        return sample_patch_mask((b, c, n), self.hparams.mask_ratio, self.hparams.mask_kind,
                                 batch["channel_mask"], generator=g, device=self.device)

    def _losses(self, batch: dict, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        x, cm = batch["x"], batch["channel_mask"]
        objective = self.hparams.objective
        feats, scale, filled = self.model.encode(x, batch["sensors"], cm, mask)
        hidden = mask & cm[:, :, None].to(torch.bool)
        out: dict[str, torch.Tensor] = {"zero_baseline": x[mask].pow(2).mean()}
        if objective == "reconstruction":
            out.update(self._reconstruction(x, mask, feats, scale, filled, cm,
                                            out["zero_baseline"]))
        elif objective == "latent":
            out["latent"] = self._latent_loss(batch, feats, hidden)
            out["loss"] = out["latent"]
        if self.band_head is not None:
            pred, guess, target = self._band_power(x, mask, cm, feats)
            out["band_power"] = F.mse_loss(pred[hidden], target[hidden])
            out["band_pred"], out["band_guess"], out["band_target"] = pred, guess, target
            weight = 1.0 if objective == "band_power" else self.hparams.band_power_weight
            out["loss"] = out.get("loss", 0.0) + weight * out["band_power"]
        return out

    def _reconstruction(self, x, mask, feats, scale, filled, cm,
                        zero_baseline: torch.Tensor) -> dict[str, torch.Tensor]:
        pred = self.model.apply_head(feats, scale, filled, cm)
        target, recon = x[mask], pred[mask].float()
        out = {"pred": pred, "mse": F.mse_loss(recon, target)}
        # < 1 means better than predicting zeros for every hidden patch
        out["mse_vs_zero"] = out["mse"].detach() / zero_baseline.clamp_min(1e-12)
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

    def _latent_loss(self, batch: dict, feats: torch.Tensor,
                     hidden: torch.Tensor) -> torch.Tensor:
        """The predictor's output for hidden patches against the teacher's targets."""
        self.teacher.eval()
        with torch.no_grad():
            target = latent_targets(self.teacher.forward_layers(
                batch["x"], batch["sensors"], batch["channel_mask"]), self.hparams.latent_top_k)
        pred = self.predictor(feats).float()
        return ((pred - target) ** 2).mean(dim=-1)[hidden].mean()

    def _band_power(self, x, mask, cm, feats) -> tuple[torch.Tensor, ...]:
        """(predicted, guessed, true) log band power per patch (B, C, N, bands): the
        prediction is the visible-patch guess plus the head's correction."""
        target = log_band_power(x, self.model.config["sfreq"])
        guess = visible_band_guess(target, mask, cm)
        return guess + self.band_head(feats).float(), guess, target

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        if self.teacher is not None:
            total = int(self.hparams.total_steps or self.trainer.estimated_stepping_batches)
            ema_update(self.teacher, self.model, ema_decay_at(
                int(self.global_step), total, self.hparams.ema_decay, self.hparams.ema_decay_end))

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        step = int(self.global_step)
        torch.manual_seed((self.hparams.seed + 7919 * step + 104_729 * self.global_rank)
                          % (2 ** 63 - 1))  # dropout: a function of the step, for resume
        out = self._losses(batch, self._mask(batch, 2 * step + 1 + 1000 * self.global_rank))
        bs = batch["x"].shape[0]
        self.count_drawn(batch)
        self.log("train/loss", out["loss"], prog_bar=True, batch_size=bs)
        for key in ("mse", "zero_baseline", "mse_vs_zero", "latent", "band_power"):
            if key in out:
                self.log(f"train/{key}", out[key], batch_size=bs)
        return out["loss"]

    def on_validation_epoch_start(self) -> None:
        self._val_sums: dict[int, torch.Tensor] = {}
        self._val_channels: dict[int, int] = {}
        self._val_band: dict[int, torch.Tensor] = {}
        self._val_pooled: list[torch.Tensor] = []

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        mask = self._mask(batch, -(batch_idx + 1))  # the same masks at every validation
        out = self._losses(batch, mask)
        if "pred" in out:
            self._accumulate_per_dataset(batch, mask, out["pred"])
        if "band_pred" in out:
            self._accumulate_band_power(batch, mask, out)
        with torch.no_grad():   # what a probe reads: the unmasked window's pooled features
            feats = self.model.forward_features(batch["x"], batch["sensors"],
                                                batch["channel_mask"])
            self._val_pooled.append(masked_mean(feats, batch["channel_mask"]).float().cpu())
        bs = batch["x"].shape[0]
        self.log("val/loss", out["loss"], prog_bar=True, batch_size=bs, sync_dist=True)
        for key in ("mse", "zero_baseline", "mse_vs_zero", "latent", "band_power"):
            if key in out:
                self.log(f"val/{key}", out[key], batch_size=bs, sync_dist=True)

    def _accumulate_band_power(self, batch, mask, out) -> None:
        """Squared log-band-power error on hidden patches, of the model and of the trivial
        visible-patch guess (:func:`visible_band_guess`), summed per dataset."""
        with torch.no_grad():
            cm = batch["channel_mask"]
            hidden = (mask & cm[:, :, None].to(torch.bool)).float()[..., None]
            target = out["band_target"]
            errs = torch.stack([((p - target) ** 2 * hidden).sum((1, 2, 3))
                                for p in (out["band_pred"], out["band_guess"])], dim=1)
            self._add_per_dataset(self._val_band, batch, errs)

    def _accumulate_per_dataset(self, batch: dict, mask: torch.Tensor,
                                pred: torch.Tensor) -> None:
        """Squared error of the model and of each trivial predictor on hidden patches, summed
        per dataset (``zeros``' error is the hidden signal's power)."""
        with torch.no_grad():
            errs = hidden_errors(batch["x"], mask, batch["channel_mask"], pred)
            self._add_per_dataset(self._val_sums, batch, errs)

    def _add_per_dataset(self, sums: dict, batch: dict, errs: torch.Tensor) -> None:
        """Add per-window error columns ``errs`` (B, k) into ``sums`` per dataset code, and
        note each dataset's widest montage (single-channel datasets are not judged)."""
        channels = batch["channel_mask"].sum(dim=1)
        for code in batch["dataset"].unique().tolist():
            rows = batch["dataset"] == code
            acc = sums.setdefault(
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
        for code, sums in sorted(self._val_band.items()):
            if self.trainer.world_size > 1:
                sums = self.trainer.strategy.reduce(sums, reduce_op="sum")
            name = names.get(code, str(code))
            ratio = float(sums[0] / sums[1].clamp_min(1e-12))
            row = self.heldout.setdefault(name, {})
            row["band_power_vs_channel_mean"] = ratio
            row["multichannel"] = self._val_channels.get(code, 1) > 1
            self.log(f"val_by_dataset/{name}/band_power_vs_channel_mean", ratio)
        self._watch_collapse()
        for name, share in self.drawn_mix().items():
            self.log(f"train_mix/{name}", share)


    def _watch_collapse(self) -> None:
        """Per-dimension std and effective rank of the held-out windows' pooled features,
        logged every validation; a collapsed representation is said loudly."""
        if len(self._val_pooled) == 0:
            return
        pooled = torch.cat(self._val_pooled)
        if pooled.shape[0] < 2:
            return
        stats = representation_stats(pooled)
        self.representation = {**stats, "step": int(self.global_step)}
        self.log("val/feature_std", stats["std_mean"])
        self.log("val/effective_rank", stats["effective_rank"])
        if stats["collapsed"]:
            log.warning("step %d: the representation has COLLAPSED (effective rank %.2f of %d, "
                        "mean std %.2g): held-out windows map to nearly the same features",
                        self.global_step, stats["effective_rank"], stats["dims"],
                        stats["std_mean"])

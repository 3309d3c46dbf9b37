"""A model family that exists only in the tests: the whole of it is this module.

``PatchMLP`` embeds each (channel, patch) with a small MLP plus the channel's sensor features
and reconstructs the patch; its pretraining task (``patch_autoencoding``) fills in hidden
patches. Nothing outside this module names it: once :func:`register` has run, brainfm's
registry answers every question about it (building it, its data contract, checkpoint
folders, ``prepare``/``embed``, its pretraining task, the benchmark's heads), which is what
"a family is one module" means.
"""
from __future__ import annotations

import torch
from torch import nn

from brainfm.data.sensors import N_SENSOR_FEATURES
from brainfm.models.contract import ContractMixin
from brainfm.models.family import Family
from brainfm.models.heads import masked_mean
from brainfm.models.registry import FAMILIES, register_family
from brainfm.tasks.base import PretrainingTask

NAME = "patch_mlp"


class PatchMLP(ContractMixin, nn.Module):
    """(B, C, N, P) patches -> per-token features (B, C, N, D) -> reconstructed patches."""

    def __init__(self, patch_len: int = 40, d_model: int = 16, n_layers: int = 2):
        super().__init__()
        self.config = dict(patch_len=patch_len, d_model=d_model, n_layers=n_layers)
        self.patch_len, self.d_model = patch_len, d_model
        self.embed_patch = nn.Linear(patch_len, d_model)
        self.embed_sensor = nn.Linear(N_SENSOR_FEATURES, d_model)
        self.layers = nn.ModuleList(nn.Sequential(nn.LayerNorm(d_model),
                                                  nn.Linear(d_model, d_model), nn.GELU())
                                    for _ in range(n_layers))
        self.out = nn.Linear(d_model, patch_len)

    def channel_encoding(self) -> str:
        return "sensor"

    def forward_layers(self, x, sensors=None, channel_mask=None) -> list[torch.Tensor]:
        x = x.reshape(x.shape[0], x.shape[1], -1, self.patch_len)
        h = self.embed_patch(x)
        if sensors is not None:
            h = h + self.embed_sensor(sensors.float())[:, :, None]
        out = []
        for layer in self.layers:
            h = h + layer(h)
            out.append(h)
        return out

    def forward_features(self, x, sensors=None, channel_mask=None) -> torch.Tensor:
        return self.forward_layers(x, sensors, channel_mask)[-1]

    def forward(self, x, sensors=None, channel_mask=None) -> torch.Tensor:
        return self.out(self.forward_features(x, sensors, channel_mask))


class PooledClassifier(nn.Module):
    """The backbone's features averaged over real channels and patches, then linear."""

    def __init__(self, backbone: PatchMLP, n_classes: int):
        super().__init__()
        self.backbone, self.head = backbone, nn.Linear(backbone.d_model, n_classes)
        self.layers = list(backbone.layers)

    def forward(self, x, sensors=None, channel_mask=None):
        feats = self.backbone.forward_features(x, sensors, channel_mask)
        return self.head(masked_mean(feats, channel_mask))


def classifier(model, head, n_classes, n_chans, n_patches):
    FAMILY.check_head(head)
    return PooledClassifier(model, n_classes)


class PatchAutoencoding(PretrainingTask):
    """Hide half the patches (zeroed), reconstruct them: MSE on the hidden ones."""

    def __init__(self, model: dict, lr: float = 1e-3, weight_decay: float = 0.0,
                 min_lr: float = 1e-4, warmup_steps: int = 0, total_steps: int | None = None,
                 seed: int = 0):
        super().__init__()
        self.save_hyperparameters()
        self.model = PatchMLP(**self.backbone_config(model))
        self.heldout: dict[str, dict] = {}

    def _loss(self, batch: dict) -> torch.Tensor:
        x, mask = batch["x"].float(), batch["channel_mask"].bool()
        g = torch.Generator().manual_seed(int(self.global_step) + 7 * self.hparams.seed)
        hidden = (torch.rand(x.shape[:3], generator=g) < 0.5).to(x.device) & mask[..., None]
        pred = self.model(x.masked_fill(hidden[..., None], 0.0), batch["sensors"], mask)
        return ((pred - x) ** 2).mean(-1)[hidden].mean()

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        self.count_drawn(batch)
        loss = self._loss(batch)
        self.log("train/loss", loss, batch_size=batch["x"].shape[0])
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self.log("val/loss", self._loss(batch), batch_size=batch["x"].shape[0])


FAMILY = Family(
    name=NAME,
    model_class=PatchMLP,
    default_config="",   # no packaged config: runs pass the model config themselves
    small_config=dict(patch_len=40, d_model=16, n_layers=2),
    channel_encoding=lambda config: "sensor",
    heads=("pooled",),
    classifier=classifier,
    tasks={"patch_autoencoding": PatchAutoencoding},
    description="a per-patch MLP (a test-only family)",
)


def register() -> Family:
    return register_family(FAMILY)


def unregister() -> None:
    FAMILIES.pop(NAME, None)

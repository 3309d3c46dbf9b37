"""Backbone adapters: everything the benchmark needs to know about a model family.

The benchmark never imports a model class. A pipeline names a family in its config
(``backbone.family``: a registered name, or ``package.module:AdapterClass`` for a family that
lives outside brainfm) and the family's adapter answers these questions:

- ``load(spec, pretrained)``: the backbone, from a checkpoint and/or constructor arguments
  (``pretrained=False``: the same architecture, randomly initialised, for from-scratch runs);
- ``classifier(model, head, ...)``: the backbone with one of the classification heads the family
  offers (``heads``), as a module called ``model(x, sensors, channel_mask) -> logits`` with a
  ``head`` attribute (trained at the head's learning rate) and ``layers`` (bottom to top, for
  layer-wise learning-rate decay);
- ``features(model, x, sensors, channel_mask)``: per-token features (B, C, N, D), which the
  linear probe pools over real channels and patches;
- ``cached_inputs(classifier, windows, cache_dir)`` (optional): what the classifier trains on;
  by default the windows themselves, for a family whose heads read a frozen backbone's
  outputs those outputs, computed once and cached (the diffusion latents).

Adding a backbone family is one such class plus a config that names it.
"""
from __future__ import annotations

import importlib
from pathlib import Path

import torch
from torch import nn


class BackboneAdapter:
    """The interface; subclasses fill it in for one family."""

    family: str = ""
    heads: tuple[str, ...] = ()

    def load(self, spec: dict, pretrained: bool = True) -> nn.Module:
        """From ``spec["checkpoint"]`` (a model file; its architecture only when
        ``pretrained`` is False) or ``spec["model"]`` (constructor arguments), with
        ``spec["overrides"]`` on top."""
        from ..checkpoint import from_pretrained, read_model_config
        from .registry import build_model

        overrides = dict(spec.get("overrides") or {})
        checkpoint = spec.get("checkpoint")
        if checkpoint and pretrained:
            return from_pretrained(checkpoint, **overrides)
        if checkpoint:  # from scratch, with the checkpoint's architecture
            return build_model(self.family, {**read_model_config(checkpoint), **overrides})
        if not spec.get("model"):
            raise ValueError(f"a {self.family} backbone needs backbone.checkpoint (a model "
                             "file) or backbone.model (constructor arguments)")
        config = {k: v for k, v in dict(spec["model"]).items() if k != "family"}
        return build_model(self.family, {**config, **overrides})

    def classifier(self, model: nn.Module, head: str, n_classes: int, n_chans: int,
                   n_patches: int) -> nn.Module:
        raise NotImplementedError

    def features(self, model: nn.Module, x: torch.Tensor, sensors: torch.Tensor | None,
                 channel_mask: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def layer_features(self, model: nn.Module, x: torch.Tensor, sensors: torch.Tensor | None,
                       channel_mask: torch.Tensor | None) -> list[torch.Tensor]:
        """Per-token features of every layer, bottom to top (each (B, C, N, D)), for probes
        that pick a layer."""
        raise NotImplementedError(f"backbone family {self.family!r} offers no per-layer "
                                  "read-out -> use readout=last")

    def cached_inputs(self, classifier: nn.Module, windows, cache_dir,
                      batch_size: int = 64):
        """The windows as ``classifier`` reads them when fine-tuned: unchanged here; a family
        whose classifier only trains a head on a frozen backbone may return windows whose
        batches carry the backbone's outputs, cached under ``cache_dir``."""
        return windows

    def check_head(self, head: str) -> None:
        if head not in self.heads:
            raise ValueError(f"backbone family {self.family!r} has no head {head!r}; "
                             f"use one of {', '.join(self.heads)}")


class CrissCrossAdapter(BackboneAdapter):
    """The criss-cross transformer: brainfm model files, original CBraMod weights, or a config.

    Heads: ``pooled`` (mean over real channels and patches, then linear; any montage and
    length) and ``flatten`` (every token through an MLP, CBraMod's downstream head; one fixed
    montage and window length).
    """

    family = "criss_cross"
    heads = ("pooled", "flatten")


    def classifier(self, model, head, n_classes, n_chans, n_patches):
        self.check_head(head)
        model.reset_head(head, n_outputs=n_classes, n_chans=n_chans, n_patches=n_patches)
        return model

    def features(self, model, x, sensors, channel_mask):
        return model.forward_features(x, sensors, channel_mask)

    def layer_features(self, model, x, sensors, channel_mask):
        return model.forward_layers(x, sensors, channel_mask)


class DiffusionAdapter(BackboneAdapter):
    """The EEGDM-style diffusion denoiser: brainfm model files, original EEGDM weights, or a
    config. Its representation is the frozen backbone's latents (gate spread per block and
    1 s patch, clean input at step 1); heads: ``fusion`` (latent fusion transformer) and
    ``pooled`` (pooled latents, linear). Features for the linear probe: (B, C, N,
    layers * width). Fine-tuning trains the head on latents cached once per weights and
    windows (``cached_inputs``), not on the backbone's output every epoch.
    """

    family = "diffusion"
    heads = ("fusion", "pooled")


    def classifier(self, model, head, n_classes, n_chans, n_patches):
        from ..tasks.ddpm import staged_mu_law
        from .latent_fusion import LatentClassifier, LatentFusionHead, PooledLatentHead

        self.check_head(head)
        size = (len(model.blocks), model.d_model, n_classes)
        module = LatentFusionHead(*size) if head == "fusion" else PooledLatentHead(*size)
        return LatentClassifier(model, module, input_transform=staged_mu_law)

    def features(self, model, x, sensors, channel_mask):
        from ..tasks.ddpm import staged_mu_law
        from .latent_cache import backbone_latents

        lat = backbone_latents(model, x, sensors, channel_mask,
                               input_transform=staged_mu_law)              # (B,C,Ly,N,d)
        return lat.permute(0, 1, 3, 2, 4).flatten(3)

    def layer_features(self, model, x, sensors, channel_mask):
        from ..tasks.ddpm import staged_mu_law
        from .latent_cache import backbone_latents

        lat = backbone_latents(model, x, sensors, channel_mask,
                               input_transform=staged_mu_law)              # (B,C,Ly,N,d)
        return list(lat.unbind(dim=2))

    def cached_inputs(self, classifier, windows, cache_dir, batch_size=64):
        from .latent_cache import LatentCache, cached_latent_windows

        return cached_latent_windows(classifier, windows, LatentCache(Path(cache_dir) / "latents"),
                                     batch_size)


_FAMILIES: dict[str, type[BackboneAdapter]] = {"criss_cross": CrissCrossAdapter,
                                               "diffusion": DiffusionAdapter}


def register_backbone(name: str, adapter: type[BackboneAdapter]) -> None:
    """Make ``backbone.family: <name>`` resolve to ``adapter`` (e.g. from a plugin's import)."""
    _FAMILIES[name] = adapter


def get_adapter(family: str = "criss_cross") -> BackboneAdapter:
    """The adapter for a registered family name or a ``module:Class`` import path."""
    if family in _FAMILIES:
        return _FAMILIES[family]()
    if ":" in family:
        module, _, attr = family.partition(":")
        try:
            cls = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as err:
            raise ValueError(f"backbone.family={family!r}: cannot import {attr} from "
                             f"{module} ({err})") from err
        if not (isinstance(cls, type) and issubclass(cls, BackboneAdapter)):
            raise ValueError(f"backbone.family={family!r} is not a BackboneAdapter subclass")
        return cls()
    raise ValueError(f"backbone.family={family!r}: registered families are "
                     f"{', '.join(sorted(_FAMILIES))}; or give 'package.module:AdapterClass'")

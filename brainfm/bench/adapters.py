"""Backbone adapters: what the benchmark asks of a backbone, whatever its family.

The benchmark never imports a model class. A pipeline names a family in its config
(``backbone.family``: a registered family, brainfm.models.registry, or
``package.module:AdapterClass`` for a backbone that is not a registered family) and the
adapter answers these questions:

- ``load(spec, pretrained)``: the backbone, from a checkpoint and/or constructor arguments
  (``pretrained=False``: the same architecture, randomly initialised, for from-scratch runs);
- ``classifier(model, head, ...)``: the backbone with one of the classification heads the family
  offers (``heads``), as a module called ``model(x, sensors, channel_mask) -> logits`` with a
  ``head`` attribute (trained at the head's learning rate) and ``layers`` (bottom to top, for
  layer-wise learning-rate decay);
- ``features(model, x, sensors, channel_mask)``: per-token features (B, C, N, D), which the
  linear probe pools over real channels and patches (``layer_features``: every layer's);
- ``cached_inputs(classifier, windows, cache_dir)``: what the classifier trains on; the
  windows themselves, or, for a family whose heads read a frozen backbone's outputs, those
  outputs, computed once and cached (the diffusion latents).

A registered family answers all of them from its record (:class:`FamilyAdapter`); nothing
here names a family.
"""
from __future__ import annotations

import importlib

import torch
from torch import nn

from ..checkpoint import from_pretrained, read_model_config
from ..models.family import Family
from ..models.registry import DEFAULT_FAMILY, FAMILIES, build_model, get_family


class BackboneAdapter:
    """The interface; a backbone outside the registry subclasses it."""

    family: str = ""
    heads: tuple[str, ...] = ()

    def load(self, spec: dict, pretrained: bool = True) -> nn.Module:
        """From ``spec["checkpoint"]`` (a checkpoint; its architecture only when
        ``pretrained`` is False) or ``spec["model"]`` (constructor arguments), with
        ``spec["overrides"]`` on top."""
        overrides = dict(spec.get("overrides") or {})
        checkpoint = spec.get("checkpoint")
        if checkpoint and pretrained:
            return from_pretrained(checkpoint, **overrides)
        if checkpoint:  # from scratch, with the checkpoint's architecture
            return build_model(self.family, {**read_model_config(checkpoint), **overrides})
        if not spec.get("model"):
            raise ValueError(f"a {self.family} backbone needs backbone.checkpoint (a "
                             "checkpoint folder) or backbone.model (constructor arguments)")
        config = {k: v for k, v in dict(spec["model"]).items() if k != "family"}
        return build_model(self.family, {**config, **overrides})

    def classifier(self, model: nn.Module, head: str, n_classes: int, n_chans: int,
                   n_patches: int) -> nn.Module:
        raise NotImplementedError

    def features(self, model: nn.Module, x: torch.Tensor, sensors: torch.Tensor | None,
                 channel_mask: torch.Tensor | None) -> torch.Tensor:
        return model.forward_features(x, sensors, channel_mask)

    def layer_features(self, model: nn.Module, x: torch.Tensor, sensors: torch.Tensor | None,
                       channel_mask: torch.Tensor | None) -> list[torch.Tensor]:
        """Per-token features of every layer, bottom to top (each (B, C, N, D)), for probes
        that pick a layer."""
        if not hasattr(model, "forward_layers"):
            raise NotImplementedError(f"backbone family {self.family!r} offers no per-layer "
                                      "read-out -> use readout=last")
        return model.forward_layers(x, sensors, channel_mask)

    def cached_inputs(self, classifier: nn.Module, windows, cache_dir,
                      batch_size: int = 64):
        """The windows as ``classifier`` reads them when fine-tuned: unchanged here."""
        return windows

    def check_head(self, head: str) -> None:
        if head not in self.heads:
            raise ValueError(f"backbone family {self.family!r} has no head {head!r}; "
                             f"use one of {', '.join(self.heads)}")


class FamilyAdapter(BackboneAdapter):
    """A registered family, answered from its record."""

    def __init__(self, record: Family):
        self.record = record
        self.family, self.heads = record.name, record.heads

    def classifier(self, model, head, n_classes, n_chans, n_patches):
        return self.record.classifier(model, head, n_classes, n_chans, n_patches)

    def cached_inputs(self, classifier, windows, cache_dir, batch_size=64):
        return self.record.inputs_for(classifier, windows, cache_dir, batch_size)


def get_adapter(family: str | None = None) -> BackboneAdapter:
    """The adapter for a registered family name (the default family when None) or a
    ``module:Class`` import path."""
    family = family or DEFAULT_FAMILY
    if family in FAMILIES:
        return FamilyAdapter(get_family(family))
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
                     f"{', '.join(sorted(FAMILIES))}; or give 'package.module:AdapterClass'")


__all__ = ["BackboneAdapter", "FamilyAdapter", "get_adapter"]

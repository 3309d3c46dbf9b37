"""Model families: which class a model file's architecture config builds.

A model file names its family (``"family"``; files written before families existed are
criss-cross). Classes are imported on demand so that loading one family never imports the
others.
"""
from __future__ import annotations

import importlib

from torch import nn

FAMILIES = {
    "criss_cross": "brainfm.models.criss_cross:CrissCrossTransformer",
    "diffusion": "brainfm.models.diffusion_denoiser:DiffusionDenoiser",
}
DEFAULT_FAMILY = "criss_cross"


def model_class(family: str) -> type[nn.Module]:
    if family not in FAMILIES:
        raise ValueError(f"model family {family!r} is unknown; brainfm builds "
                         f"{', '.join(sorted(FAMILIES))}")
    module, _, name = FAMILIES[family].partition(":")
    return getattr(importlib.import_module(module), name)


def family_of(model: nn.Module) -> str:
    """The registered family of a model instance."""
    for family in FAMILIES:
        if type(model) is model_class(family):
            return family
    raise ValueError(f"{type(model).__name__} is not a registered model family "
                     f"({', '.join(sorted(FAMILIES))}); add it to brainfm.models.registry")


def build_model(family: str | None, config: dict) -> nn.Module:
    """An untrained model of ``family`` (criss-cross when None) from its architecture config."""
    return model_class(family or DEFAULT_FAMILY)(**config)


__all__ = ["DEFAULT_FAMILY", "FAMILIES", "build_model", "family_of", "model_class"]

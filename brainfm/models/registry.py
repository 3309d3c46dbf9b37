"""The registered model families, in one place: name -> :class:`~brainfm.models.family.Family`.

A model file or config.json names its family (``"family"``); files written before families
existed are of :data:`DEFAULT_FAMILY`. A family from outside brainfm joins with
:func:`register_family` (its module, once imported, is the whole integration).
"""
from __future__ import annotations

from torch import nn

from .families import criss_cross, diffusion
from .family import Family

#: The family of a config or file that names none (files written before families existed).
DEFAULT_FAMILY = criss_cross.FAMILY.name

FAMILIES: dict[str, Family] = {}


def register_family(family: Family) -> Family:
    """Make ``family`` known by its name (a later registration under the same name wins)."""
    FAMILIES[family.name] = family
    return family


for _builtin in (criss_cross.FAMILY, diffusion.FAMILY):
    register_family(_builtin)


def get_family(name: str | None = None) -> Family:
    """The record of family ``name`` (:data:`DEFAULT_FAMILY` when None)."""
    name = name or DEFAULT_FAMILY
    if name not in FAMILIES:
        raise ValueError(f"model family {name!r} is unknown; brainfm builds "
                         f"{', '.join(sorted(FAMILIES))} -> name one of them, or register "
                         "yours with brainfm.models.registry.register_family")
    return FAMILIES[name]


def model_class(family: str) -> type[nn.Module]:
    return get_family(family).model_class


def family_of(model: nn.Module) -> Family:
    """The registered family of a model instance (torch.compile's wrapper unwrapped)."""
    model = getattr(model, "_orig_mod", model)
    for family in FAMILIES.values():
        if type(model) is family.model_class:
            return family
    raise ValueError(f"{type(model).__name__} is not a registered model family "
                     f"({', '.join(sorted(FAMILIES))}) -> register it with "
                     "brainfm.models.registry.register_family")


def family_and_config_of(model) -> tuple[str, dict]:
    """(registered family name, architecture config) of a model instance."""
    model = getattr(model, "_orig_mod", model)
    return family_of(model).name, dict(model.config)


def build_model(family: str | None, config: dict) -> nn.Module:
    """An untrained model of ``family`` (:data:`DEFAULT_FAMILY` when None) from its
    architecture config."""
    return get_family(family).build(config)


def family_of_task(hparams: dict) -> Family:
    """The family a pretraining task's saved hyperparameters (a Lightning checkpoint's)
    trained: the one its model config names, else the one whose tasks alone save one of
    the hyperparameters present (checkpoints written before tasks recorded their family),
    else the default."""
    named = (hparams.get("model") or {}).get("family")
    if named:
        return get_family(named)
    for family in FAMILIES.values():
        if any(key in hparams for key in family.task_markers):
            return family
    return get_family(DEFAULT_FAMILY)


def import_format_of(state: dict):
    """(family, import format) of a foreign state dict one registered family loads, else
    (None, None)."""
    for family in FAMILIES.values():
        for fmt in family.import_formats:
            if fmt.recognises(state):
                return family, fmt
    return None, None


__all__ = ["DEFAULT_FAMILY", "FAMILIES", "build_model", "family_and_config_of", "family_of",
           "family_of_task", "get_family", "import_format_of", "model_class",
           "register_family"]

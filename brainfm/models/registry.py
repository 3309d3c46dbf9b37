"""The registered model families, in one place: name -> :class:`~brainfm.models.family.Family`.

A model file or config.json names its family (``"family"``); files written before families
existed are of :data:`DEFAULT_FAMILY`. A family from outside brainfm joins with
:func:`register_family`, or, so that every process finds it (brainfm-pretrain, a checkpoint
loaded elsewhere), as an installed package's entry point in the group ``brainfm.families``
naming its record (``my_family = "my_package.family:FAMILY"``), loaded the first time an
unknown family is asked for.
"""
from __future__ import annotations

from importlib.metadata import entry_points

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


#: The entry-point group through which installed packages offer families.
ENTRY_POINTS = "brainfm.families"


def load_installed_families() -> list[str]:
    """Register the families installed packages offer (entry points in
    :data:`ENTRY_POINTS`) that are not registered yet; returns their names."""
    added = []
    for point in entry_points(group=ENTRY_POINTS):
        if point.name in FAMILIES:
            continue
        record = point.load()
        if not isinstance(record, Family):
            raise ValueError(f"entry point {point.name} = {point.value} ({ENTRY_POINTS}) is a "
                             f"{type(record).__name__}, not a brainfm Family record")
        added.append(register_family(record).name)
    return added


def get_family(name: str | None = None) -> Family:
    """The record of family ``name`` (:data:`DEFAULT_FAMILY` when None; an installed
    package's family is loaded when first asked for)."""
    name = name or DEFAULT_FAMILY
    if name not in FAMILIES:
        load_installed_families()
    if name not in FAMILIES:
        raise ValueError(f"model family {name!r} is unknown; brainfm builds "
                         f"{', '.join(sorted(FAMILIES))} -> name one of them, or register "
                         "yours (brainfm.models.registry.register_family, or an entry point "
                         f"in the group {ENTRY_POINTS} of an installed package)")
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


__all__ = ["DEFAULT_FAMILY", "ENTRY_POINTS", "FAMILIES", "build_model", "family_and_config_of", "family_of",
           "family_of_task", "get_family", "import_format_of", "load_installed_families",
           "model_class", "register_family"]

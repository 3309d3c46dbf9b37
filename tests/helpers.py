"""Config loading for tests: the same YAML files users run, composed by Hydra."""
from __future__ import annotations

from brainfm.configuration import compose_config, prep_configs


def load_configs(name: str, overrides=()):
    """(DatasetSpec, StandardiseConfig) of ``dataset=name`` as brainfm-prep composes them."""
    return prep_configs(compose_config([f"dataset={name}", *overrides]))

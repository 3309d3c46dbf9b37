"""Config loading for tests: the same YAML files users run, composed by Hydra."""
from __future__ import annotations

from brainfm.cli import CONF_DIR, prep_configs, register_resolvers


def compose(overrides=()):
    """The composed brainfm-prep config for the given overrides."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    register_resolvers()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name="prep", overrides=list(overrides))


def load_configs(name: str, overrides=()):
    """(DatasetSpec, StandardiseConfig) of ``dataset=name`` as brainfm-prep composes them."""
    return prep_configs(compose([f"dataset={name}", *overrides]))

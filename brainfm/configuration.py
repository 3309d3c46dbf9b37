"""Composing brainfm's Hydra configs, for entry points and Python callers alike.

The configs ship inside the package (``brainfm/conf``), so a non-editable install has them;
``--config-dir`` on any entry point adds a user's folder in front of them. This module sits
below the entry points (cli.py) and the runners that compose configs of their own
(pretrain_run.py, bench/pretrained.py, validate.py), so none of them imports another.
"""
from __future__ import annotations

from pathlib import Path

CONF_DIR = Path(__file__).resolve().parent / "conf"


def register_resolvers() -> None:
    """``${brainfm_sample:eegmat}`` -> the embedded sample folder, and
    ``${brainfm_folder:${name},name}`` -> ``name`` when it is one folder name, for configs."""
    from omegaconf import OmegaConf

    from .paths import sample_root

    if not OmegaConf.has_resolver("brainfm_sample"):
        OmegaConf.register_new_resolver("brainfm_sample", lambda sub="": str(sample_root() / sub))
    if not OmegaConf.has_resolver("brainfm_folder"):
        OmegaConf.register_new_resolver("brainfm_folder", folder_name)


def folder_name(name, key: str = "name") -> str:
    """``name`` when it is one folder name; otherwise the command stops here.

    The run folder (``runs/<name>/<time>``) is resolved and made by Hydra before any of
    brainfm's code runs, so a name like ``../..`` would put the run (its log, .hydra/)
    outside runs/ before validation could refuse it. An exception raised here reaches the
    user as a page of Hydra's traceback; SystemExit is the one way out that prints only the
    message (it is no Exception, so neither OmegaConf nor Hydra wraps it)."""
    import sys

    from .data.checks import name_problem

    bad = name_problem(name, key)
    if bad:
        command = Path(sys.argv[0]).name
        command = command if command.startswith("brainfm-") else "brainfm"
        raise SystemExit(f"{command}: {bad.replace('a store folder', 'a folder')}; nothing "
                         "was run")
    return str(name)


def conf_dir() -> str:
    """The packaged config folder (fails loudly when an install left it out)."""
    if not CONF_DIR.is_dir():
        raise FileNotFoundError(f"brainfm: packaged config folder {CONF_DIR} is missing; "
                                "reinstall brainfm (pip install brainfm or pip install .)")
    return str(CONF_DIR)


def config_options(group: str) -> set[str]:
    """The options of a config group (``dataset``, ``experiment``, ...): the packaged ones,
    plus those a user's ``--config-dir`` adds when called inside an entry point."""
    from hydra.core.global_hydra import GlobalHydra

    names = {p.stem for p in (CONF_DIR / group).glob("*.yaml")}
    hydra = GlobalHydra.instance()
    if hydra.is_initialized():
        names |= set(hydra.config_loader().get_group_options(group))
    return names


def compose_config(overrides=(), config_name: str = "prep"):
    """A config composed exactly as the entry point would, for use from Python."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    register_resolvers()
    if GlobalHydra.instance().is_initialized():  # inside an entry point: same search path
        return compose(config_name=config_name, overrides=list(overrides))
    with initialize_config_dir(config_dir=conf_dir(), version_base="1.3"):
        return compose(config_name=config_name, overrides=list(overrides))


def dataset_prep_configs(name: str, inline: dict | None = None):
    """(DatasetSpec, StandardiseConfig) of dataset ``name``: ``conf/dataset/<name>.yaml``,
    or, when ``inline`` has an entry for it, that entry merged over
    ``conf/dataset/folder.yaml`` (a dataset defined in an experiment file)."""
    from omegaconf import OmegaConf

    if name in (inline or {}):
        cfg = compose_config(["dataset=folder"])
        OmegaConf.set_struct(cfg, False)
        cfg.dataset = OmegaConf.merge(cfg.dataset, {"name": name, **inline[name]})
    else:
        cfg = compose_config([f"dataset={name}"])
    return prep_configs(cfg)


def declared_dataset(name: str):
    """The :class:`DatasetSpec` that ``conf/dataset/<name>.yaml`` declares (a packaged one, or
    one of a ``--config-dir`` inside an entry point), or None when there is no such config,
    e.g. for a dataset defined inside an experiment file. Its licence, paradigm and citation
    are the dataset's facts that model cards and baselines read."""
    if name not in config_options("dataset"):
        return None
    return dataset_prep_configs(name)[0]


def prep_configs(cfg):
    """(DatasetSpec, StandardiseConfig) from a composed config; the dataset's own
    ``standardise`` block overrides single keys of the standardise group."""
    from omegaconf import OmegaConf

    from .data.datasets import DatasetSpec
    from .data.standardise import StandardiseConfig

    spec = DatasetSpec.from_dict(OmegaConf.to_container(cfg.dataset, resolve=True))
    std_cfg = OmegaConf.to_container(cfg.standardise, resolve=True)
    std_cfg.update(spec.standardise)
    return spec, StandardiseConfig.from_dict(std_cfg)


#: experiment sections whose entries an experiment file may drop with ``name: null``
DROPPABLE = ("pipelines", "dataset_configs", "protocols")


def drop_null_entries(experiment: dict) -> dict:
    """``experiment`` without the entries set to null in :data:`DROPPABLE` sections.

    Hydra merges an experiment file over the one it inherits; ``pipelines: {cca: null}`` is
    the usual way to drop an inherited entry, and leaves ``cca: None`` in the merged config.
    """
    out = dict(experiment)
    for section in DROPPABLE:
        if isinstance(out.get(section), dict):
            out[section] = {k: v for k, v in out[section].items() if v is not None}
    return out

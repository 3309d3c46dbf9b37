"""Configuration checked whole before the first expensive step.

A typo in a pipeline kind, a misspelled dataset, labels that no window can carry or a
regular expression that matches no file used to surface after stores, pretraining and
earlier cells had run, or never (the run "succeeded" with nothing in it). Each entry point
collects every problem here first and stops with the whole list.
"""
from __future__ import annotations

import re
from pathlib import Path

from .errors import ConfigError

#: what :func:`brainfm.bench.pipelines.make_pipeline` builds
PIPELINE_KINDS = ("classical", "probe", "finetune", "scratch", "eegnet", "shallow")
#: the kinds that can z-score their features per subject (brainfm.bench.subject_norm)
SUBJECT_NORM_KINDS = ("classical", "probe")


class ConfigProblems(ConfigError):
    """Every problem found in a configuration, one per line."""

    def __init__(self, entry: str, problems: list[str]):
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{entry}: {len(self.problems)} problem(s) in the configuration, "
                         f"nothing was run:\n{lines}")


def raise_problems(entry: str, problems: list[str]) -> None:
    if problems:
        raise ConfigProblems(entry, problems)


def name_problem(name, what: str) -> str | None:
    from .data.store import StoreError, check_store_name

    try:
        check_store_name(name, what)
    except StoreError as err:
        return str(err)
    return None


def dataset_problems(spec) -> list[str]:
    """Problems a dataset spec has on its own (before any file is read)."""
    out = [p for p in [name_problem(spec.name, "dataset.name")] if p]
    if spec.labels.source == "events" and spec.windows.kind == "fixed":
        out.append(f"dataset {spec.name!r}: labels.source=events with windows.kind=fixed "
                   "leaves every window unlabelled -> use windows.kind=events (trials around "
                   "the events) or labels.source=path/none")
    return out


def check_listing(spec, items, base: Path) -> None:
    """The recordings a spec found: none at all, or a ``path_regex`` that matches none of
    them (so no subject, session or label would be read), is a configuration error."""
    problems = []
    if not items:
        problems.append(f"dataset {spec.name!r}: no recording under {base} matches "
                        f"include={spec.include} (exclude={spec.exclude}) -> check "
                        "dataset.path and dataset.include")
    elif spec.path_regex and not any(re.search(spec.path_regex, it.relpath) for it in items):
        problems.append(f"dataset {spec.name!r}: path_regex {spec.path_regex!r} matches none "
                        f"of its {len(items)} recordings (e.g. {items[0].relpath!r}), so no "
                        "subject/session/label would be read -> fix dataset.path_regex")
    raise_problems(f"dataset {spec.name}", problems)


def known_datasets(inline=()) -> set[str]:
    """Dataset names with a config: conf/dataset/*.yaml and a user's --config-dir's
    dataset/*.yaml, plus datasets defined inline."""
    from .configuration import config_options

    return config_options("dataset") | set(inline or ())


def _dataset_name_problems(names, where: str, known: set[str]) -> list[str]:
    out = []
    for name in names or []:
        bad = name_problem(name, where)
        if bad:
            out.append(bad)
        elif name not in known:
            out.append(f"{where}: unknown dataset {name!r}; known: {sorted(known)}")
    return out


def store_problem(store: Path) -> str | None:
    """Why an existing store cannot feed training (every recording failed, or no window)."""
    import pandas as pd

    recs, wins = store / "recordings.parquet", store / "windows.parquet"
    if not (recs.exists() and wins.exists()):
        return None  # not prepared yet (or interrupted): the run prepares it first
    table = pd.read_parquet(recs, columns=["status"])
    n_windows = len(pd.read_parquet(wins, columns=["key"]))
    if n_windows == 0:
        failed = int((table["status"] != "ok").sum())
        return (f"store {store} has no windows ({failed} of {len(table)} recordings failed; "
                "see its recordings.parquet) -> fix the recordings or drop the dataset")
    return None


def pretrain_problems(cfg) -> list[str]:
    """brainfm-pretrain: dataset names, their specs, existing stores, resume, logger."""
    from .configuration import compose_config, prep_configs

    problems = []
    datasets = list(cfg.data.datasets)
    known = known_datasets()
    problems += _dataset_name_problems(datasets, "data.datasets", known)
    view = cfg.data.get("view")
    for name in datasets:
        if name not in known or name_problem(name, "data.datasets"):
            continue
        spec, _ = prep_configs(compose_config([f"dataset={name}"]))
        if view:  # the store pretraining reads: the dataset cut as that view
            spec = spec.with_view(view)
        problems += dataset_problems(spec)
        folder = spec.store_name() if hasattr(spec, "store_name") else spec.name
        bad = store_problem(Path(cfg.store_root) / folder)
        if bad:
            problems.append(bad)
    if cfg.get("resume") and not Path(cfg.resume).is_file():
        problems.append(f"resume={cfg.resume}: no such checkpoint (a run writes "
                        "<run>/checkpoints/last.ckpt) -> check the path")
    if cfg.get("logger") not in ("csv", "tensorboard"):
        problems.append(f"logger={cfg.get('logger')!r}; use csv or tensorboard")
    every = cfg.get("checkpoint_every_n_steps", 0)
    if not isinstance(every, int) or every < 0:
        problems.append(f"checkpoint_every_n_steps={every!r}; use a whole number >= 0")
    return problems


def bench_problems(experiment: dict, store_root=None) -> list[str]:
    """brainfm-bench: datasets everywhere they appear, pipeline kinds, protocol keys.
    A dataset is known by its config, an inline definition or its store under ``store_root``.
    """
    datasets = list(experiment.get("datasets") or [])
    known = known_datasets(experiment.get("dataset_configs") or {})
    if store_root is not None and Path(store_root).is_dir():
        known |= {p.name for p in Path(store_root).iterdir() if (p / "store.json").is_file()}
    problems = _dataset_name_problems(datasets, "datasets", known)
    if not datasets:
        problems.append("datasets: empty -> name at least one dataset to evaluate")
    pipelines = experiment.get("pipelines") or {}
    if not pipelines:
        problems.append("pipelines: empty -> name at least one pipeline")
    for pname, spec in pipelines.items():
        spec = spec or {}
        if spec.get("kind") not in PIPELINE_KINDS:
            problems.append(f"pipelines.{pname}.kind={spec.get('kind')!r}; use one of "
                            f"{list(PIPELINE_KINDS)}")
        if spec.get("subject_norm") not in (None, True, False) or (
                spec.get("subject_norm") and spec.get("kind") not in SUBJECT_NORM_KINDS):
            problems.append(f"pipelines.{pname}.subject_norm={spec.get('subject_norm')!r}; "
                            "use true or false, on a pipeline of kind "
                            f"{' or '.join(SUBJECT_NORM_KINDS)}")
        for name in spec.get("datasets") or []:
            if name not in known:
                problems.append(f"pipelines.{pname}.datasets: unknown dataset {name!r} (the "
                                "pipeline would silently skip it); known: "
                                f"{sorted(known)}")
    for key in (experiment.get("protocols") or {}):
        if key != "default" and key not in known:
            problems.append(f"protocols.{key}: unknown dataset {key!r} (use a dataset name "
                            "or 'default')")
    pretrained = experiment.get("pretrained") or {}
    problems += _dataset_name_problems(pretrained.get("datasets"), "pretrained.datasets",
                                       known)
    return problems

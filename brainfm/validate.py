"""Configuration checked whole before the first expensive step.

A typo in a pipeline kind, a misspelled dataset, labels that no window can carry or a
regular expression that matches no file used to surface after stores, pretraining and
earlier cells had run, or never (the run "succeeded" with nothing in it). Each entry point
collects every problem here first and stops with the whole list.
"""
from __future__ import annotations

from pathlib import Path

from .data.checks import dataset_problems, name_problem
# entry points stop with every problem found through these (defined at the bottom, errors.py)
from .errors import ConfigProblems, raise_problems  # noqa: F401
from .tasks.base import check_task_pairing



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

    problems = run_name_problems(cfg)
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
    problems += task_pairing_problems(cfg)
    if cfg.get("resume") and not Path(cfg.resume).is_file():
        problems.append(f"resume={cfg.resume}: no such checkpoint (a run writes "
                        "<run>/checkpoints/last.ckpt) -> check the path")
    if cfg.get("logger") not in ("csv", "tensorboard"):
        problems.append(f"logger={cfg.get('logger')!r}; use csv or tensorboard")
    every = cfg.get("checkpoint_every_n_steps", 0)
    if not isinstance(every, int) or every < 0:
        problems.append(f"checkpoint_every_n_steps={every!r}; use a whole number >= 0")
    for key, least in (("checkpoint_every_minutes", 0), ("progress_every_s", 1e-9)):
        value = cfg.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or value < least):
            problems.append(f"{key}={value!r}; use a number "
                            + (">= 0 (0 or null: none)" if least == 0 else "> 0"))
    return problems


def task_pairing_problems(cfg) -> list[str]:
    """The task must train the model's family (the family record pairs them), checked
    before any store is prepared."""
    from omegaconf import OmegaConf

    model = OmegaConf.to_container(cfg.model, resolve=True) if "model" in cfg else {}
    try:
        check_task_pairing((cfg.get("task") or {}).get("kind"), model or {})
    except ValueError as err:
        return [str(err)]
    return []


def _whole_number(value, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def run_name_problems(cfg) -> list[str]:
    """A run's ``name`` becomes a folder (runs/<name>/, results/<name>/): one folder name.
    (The packaged configs refuse it earlier, before Hydra makes the run folder; this covers
    a run given ``hydra.run.dir`` explicitly.)"""
    name = cfg.get("name")
    bad = name_problem(name, "name") if name is not None else None
    return [bad.replace("a store folder", "a folder")] if bad else []


def _seed_problems(experiment: dict) -> list[str]:
    seeds = experiment.get("seeds", [0])
    if not isinstance(seeds, (list, tuple)) or not seeds:
        return [f"seeds={seeds!r}; give a list of whole numbers >= 0, e.g. 'seeds=[0,1,2]'"]
    bad = [s for s in seeds if not _whole_number(s, 0)]
    return [f"seeds={list(seeds)}: {bad} not whole number(s) >= 0"] if bad else []


def _max_folds_problems(experiment: dict) -> list[str]:
    value = experiment.get("max_folds")
    if value is None or _whole_number(value, 1):
        return []
    return [f"max_folds={value!r}; use a whole number >= 1 (the first N folds per dataset) "
            "or null for every fold"]


def _protocol_problems(experiment: dict, datasets, known: set[str]) -> list[str]:
    """Every protocol entry built as the runner builds it (name, options, their values)."""
    from .bench.protocols import protocol_from_spec

    protocols = experiment.get("protocols") or {}
    out = []
    for key, spec in protocols.items():
        if key != "default" and key not in known:
            out.append(f"protocols.{key}: unknown dataset {key!r} (use a dataset name "
                       "or 'default')")
        if not isinstance(spec, dict):
            out.append(f"protocols.{key}={spec!r}; give {{name: <protocol>, <options>}}")
            continue
        try:
            protocol_from_spec(spec)
        except (TypeError, ValueError) as err:
            out.append(f"protocols.{key}: {err}")
    lacking = [d for d in datasets if d not in protocols]
    if lacking and "default" not in protocols:
        out.append(f"protocols: no entry for {', '.join(lacking)} and no 'default'")
    return out


def _signature_keys(fn) -> set[str] | None:
    """The keyword arguments ``fn`` takes (None: it takes any)."""
    import inspect

    params = inspect.signature(fn).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.kind is not p.VAR_POSITIONAL} - {"self"}


def _options(spec: dict, *also: str) -> dict:
    """A pipeline spec's options for its class: without the keys the runner reads itself."""
    return {k: v for k, v in spec.items() if k not in ("kind", "name", "datasets", *also)}


def _foreign_keys(where: str, spec: dict, takes: set[str] | None, what: str) -> list[str]:
    if takes is None:
        return []
    foreign = sorted(set(spec) - takes)
    if not foreign:
        return []
    return [f"{where}: {what} takes no option {', '.join(map(repr, foreign))}; it takes "
            f"{', '.join(sorted(takes))}"]


def _classical_problems(where: str, spec: dict) -> list[str]:
    from .bench.baselines import CLASSICAL

    name = spec.get("baseline")
    if name not in CLASSICAL:
        return [f"{where}.baseline={name!r}: unknown baseline; use one of {sorted(CLASSICAL)}"]
    return _foreign_keys(where, _options(spec, "baseline", "subject_norm"),
                         _signature_keys(CLASSICAL[name]),
                         f"baseline {name}")


def _neural_problems(where: str, spec: dict) -> list[str]:
    from .bench.pipelines import NeuralPipeline

    takes = (_signature_keys(NeuralPipeline) or set()) - {"kind", "cache_dir"}
    # subject_norm has its own check (true is refused here, false means nothing)
    out = _foreign_keys(where, _options(spec, "subject_norm"), takes,
                        f"a {spec['kind']} pipeline")
    epochs = spec.get("epochs", 1)
    if not _whole_number(epochs, 1):
        out.append(f"{where}.epochs={epochs!r}; use a whole number >= 1 (0 would score an "
                   "untrained network)")
    for key in ("batch_size", "patience"):
        value = spec.get(key, 1)
        if value is not None and not _whole_number(value, 1):
            out.append(f"{where}.{key}={value!r}; use a whole number >= 1"
                       + (" or null (no early stopping)" if key == "patience" else ""))
    return out


def _backbone_problems(where: str, spec: dict) -> list[str]:
    from .bench.adapters import get_adapter

    backbone = spec.get("backbone")
    if spec["kind"] in ("eegnet", "shallow", "classical"):
        return []
    if not isinstance(backbone, dict) or not (backbone.get("checkpoint")
                                              or backbone.get("model")):
        return [f"{where}.backbone: give backbone.checkpoint (a checkpoint folder or model "
                "file) or backbone.model (constructor arguments)"]
    try:
        adapter = get_adapter(backbone.get("family"))
    except ValueError as err:
        return [f"{where}.{err}"]
    if spec["kind"] == "probe":
        return []
    try:
        adapter.check_head(backbone.get("head", "pooled"))
    except ValueError as err:
        return [f"{where}.backbone.head: {err}"]
    return []


def _pipeline_problems(pname: str, spec, known: set[str]) -> list[str]:
    from .bench.pipelines import PIPELINE_KINDS, PROBE_READOUTS, SUBJECT_NORM_KINDS

    where = f"pipelines.{pname}"
    if not isinstance(spec, dict):
        return [f"{where}={spec!r}; give {{kind: ..., <options>}}, or null to drop an "
                "inherited pipeline"]
    kind = spec.get("kind")
    if kind not in PIPELINE_KINDS:
        return [f"{where}.kind={kind!r}; use one of {list(PIPELINE_KINDS)}"]
    out = [f"{where}.datasets: unknown dataset {name!r} (the pipeline would silently skip "
           f"it); known: {sorted(known)}"
           for name in spec.get("datasets") or [] if name not in known]
    if spec.get("subject_norm") not in (None, True, False) or (
            spec.get("subject_norm") and kind not in SUBJECT_NORM_KINDS):
        out.append(f"{where}.subject_norm={spec.get('subject_norm')!r}; use true or false, on "
                   f"a pipeline of kind {' or '.join(SUBJECT_NORM_KINDS)}")
    if kind == "classical":
        out += _classical_problems(where, spec)
    elif kind == "probe":   # options a linear probe would otherwise silently ignore
        out += _foreign_keys(where, _options(spec), {"backbone", "readout", "subject_norm"},
                             "a probe pipeline")
        if spec.get("readout", "recorded") not in PROBE_READOUTS:
            out.append(f"{where}.readout={spec.get('readout')!r}; use one of "
                       f"{list(PROBE_READOUTS)}")
    else:
        out += _neural_problems(where, spec)
    return out + _backbone_problems(where, spec)


def _store_standardise(name: str, experiment: dict, store_root) -> dict:
    """The standardisation of ``name``'s store: its store.json's, or, before the store is
    prepared, what brainfm-prep will apply (the dataset's config, or its inline entry)."""
    import json

    from .configuration import dataset_prep_configs

    meta = Path(store_root or "stores") / name / "store.json"
    if meta.is_file():
        return json.loads(meta.read_text()).get("standardise") or {}
    return dataset_prep_configs(name, experiment.get("dataset_configs"))[1].as_dict()


def _checkpoint_problems(experiment: dict, datasets, store_root) -> list[str]:
    """Every checkpoint a cell would load exists, reads, and was standardised as the stores
    it is evaluated on (a 100 Hz checkpoint on a 200 Hz store); those the ``pretrained``
    block makes are checked when made."""
    from .bench.pipelines import uses_pretrained_weights
    from .bench.pretrained import checkpoint_for
    from .checkpoint import read_model_file
    from .data.contract import contract_differences

    made_by_block = (experiment.get("pretrained") or {}).get("path")
    contracts, standardise = {}, {}
    missing, unreadable, mismatch = {}, {}, {}   # (path[, dataset]) -> pipelines
    for pname, spec in (experiment.get("pipelines") or {}).items():
        backbone = spec.get("backbone") if isinstance(spec, dict) else None
        template = backbone.get("checkpoint") if isinstance(backbone, dict) else None
        if not template:
            continue
        for dataset in datasets:
            if spec.get("datasets") is not None and dataset not in spec["datasets"]:
                continue
            path = checkpoint_for(template, dataset)
            if not Path(path).exists():
                if not (made_by_block and path == checkpoint_for(made_by_block, dataset)):
                    missing.setdefault(path, []).append(pname)
                continue
            if path not in contracts:
                try:
                    contracts[path] = read_model_file(path)[2].get("contract") or {}
                except Exception as err:   # every way a file can fail to load, named
                    contracts[path], unreadable[path] = None, f"{err}"
            if contracts[path] is None or not uses_pretrained_weights(spec):
                continue
            if dataset not in standardise:
                standardise[dataset] = _store_standardise(dataset, experiment, store_root)
            differ = contract_differences(standardise[dataset], contracts[path])
            if differ:
                mismatch.setdefault((path, dataset, "; ".join(differ)), []).append(pname)
    return ([f"no checkpoint at {path} (backbone.checkpoint of pipelines {', '.join(users)}) "
             "-> give a checkpoint folder or model file (brainfm-export writes one)"
             for path, users in missing.items()]
            + [f"backbone.checkpoint {path}: {why}" for path, why in unreadable.items()]
            + [f"checkpoint {path} (pipelines {', '.join(users)}) expects data standardised "
               f"otherwise than the store of {dataset} ({differ}) -> use a checkpoint made "
               f"for {dataset}'s standardisation, or prepare the store with the checkpoint's "
               "(the dataset's standardise block)"
               for (path, dataset, differ), users in mismatch.items()])


def _pretrained_problems(experiment: dict, datasets, known: set[str],
                         store_root) -> list[str]:
    """The ``pretrained`` block: its keys, and the brainfm-pretrain configuration it would
    run (composed with its overrides and checked as brainfm-pretrain checks it), so that a
    typo stops the run before stores are prepared and pretraining starts, not after."""
    from .bench.pretrained import checkpoint_for, pretraining_corpus
    from .configuration import compose_config, config_options

    pretrained = experiment.get("pretrained") or {}
    if not pretrained:
        return []
    out = _dataset_name_problems(pretrained.get("datasets"), "pretrained.datasets", known)
    out += [f"pretrained.{key}: missing -> see brainfm/bench/pretrained.py for the block's keys"
            for key in ("experiment", "datasets", "path") if not pretrained.get(key)]
    name = pretrained.get("experiment")
    if name and name not in config_options("experiment"):
        out.append(f"pretrained.experiment={name!r}: no such experiment; known: "
                   f"{sorted(config_options('experiment'))}")
    if out:
        return out
    corpora = []
    for dataset in datasets:
        if Path(checkpoint_for(pretrained["path"], dataset)).exists():
            continue
        try:
            corpora.append(pretraining_corpus(pretrained, dataset))
        except ValueError as err:
            out.append(str(err))
    if out or not corpora:
        return out
    overrides = [f"experiment={name}", f"data.datasets=[{','.join(corpora[0])}]",
                 f"store_root={store_root or 'stores'}", *(pretrained.get("overrides") or [])]
    try:
        cfg = compose_config(overrides, config_name="pretrain")
    except Exception as err:   # Hydra's own errors: an unknown key, a bad override
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        return [f"pretrained.overrides: {'; '.join(lines)}"]
    return [f"pretrained (brainfm-pretrain {' '.join(overrides)}): {problem}"
            for problem in pretrain_problems(cfg)]


def bench_problems(experiment: dict, store_root=None) -> list[str]:
    """brainfm-bench: everything a cell would fail on, found before any store, pretraining
    or cell: the run name, datasets everywhere they appear, pipelines (kinds, baselines,
    options, epochs, backbone families and heads), protocols (names and options, after
    Hydra's merging), seeds, max_folds, and each checkpoint (it exists, it loads, its data
    contract matches each store it is evaluated on). A dataset is known by its config, an
    inline definition or its store under ``store_root``.
    """
    from .configuration import drop_null_entries

    experiment = drop_null_entries(experiment)
    datasets = list(experiment.get("datasets") or [])
    known = known_datasets(experiment.get("dataset_configs") or {})
    if store_root is not None and Path(store_root).is_dir():
        known |= {p.name for p in Path(store_root).iterdir() if (p / "store.json").is_file()}
    problems = run_name_problems(experiment)
    problems += _dataset_name_problems(datasets, "datasets", known)
    if not datasets:
        problems.append("datasets: empty -> name at least one dataset to evaluate")
    pipelines = experiment.get("pipelines") or {}
    if not pipelines:
        problems.append("pipelines: empty -> name at least one pipeline")
    for pname, spec in pipelines.items():
        problems += _pipeline_problems(pname, spec, known)
    problems += _protocol_problems(experiment, datasets, known)
    problems += _seed_problems(experiment) + _max_folds_problems(experiment)
    evaluable = [d for d in datasets if d in known and not name_problem(d, "datasets")]
    problems += _pretrained_problems(experiment, evaluable, known, store_root)
    problems += _checkpoint_problems(experiment, evaluable, store_root)
    return problems

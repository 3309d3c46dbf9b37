"""brainfm-bench: datasets x pipelines x protocols x seeds -> resumable cells -> tables, plots.

Each cell (one fold of one pipeline on one dataset under one protocol and seed) is keyed by
the hash of everything that determines it; a finished cell is read back, never recomputed.
Metrics are computed per test subject and pooled per fold, into one tidy table; datasets
without subject ids (the epilepsy segments) are scored per fold only, since a test recording
of one class is no unit to score.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..checkpoint import read_model_file
from ..data.groups import NO_SUBJECT, subject_groups
from ..data.loading import WindowDataset
from ..embed.core import check_store_contract
from .metrics import classification_metrics
from .pipelines import make_pipeline, uses_pretrained_weights
from .pretrained import check_pretraining_disjoint, checkpoint_for
from .protocols import protocol_from_spec
from .report import markdown, plots
from .results import ResultsStore, cell_key, file_digest
from ..configuration import drop_null_entries
from ..progress import progress_bar


def _subject_of(group: str) -> str:
    """A subject key (``dataset/subject``) as the tidy table names it."""
    return group.split("/", 1)[1]


def _rows(dataset, pipeline, protocol, fold, seed, groups, y_true, pred, n_classes,
          per_subject: bool):
    """Tidy records: per test subject (where the dataset has subjects), then the fold's pooled
    scores (subject ``"__fold__"``)."""
    out = []
    units = [*np.unique(groups[pred.rows])] if per_subject else []
    for group in [*units, "__fold__"]:
        pick = (np.ones(len(pred.rows), bool) if group == "__fold__"
                else groups[pred.rows] == group)
        scores = classification_metrics(
            y_true[pred.rows][pick], pred.y_pred[pick],
            None if pred.y_score is None else pred.y_score[pick], n_classes=n_classes)
        subject = group if group == "__fold__" else _subject_of(group)
        out += [dict(dataset=dataset, pipeline=pipeline, protocol=protocol, fold=fold,
                     subject=subject, seed=seed, metric=m, value=float(v))
                for m, v in scores.items()]
    return out


def _pipeline_for(dataset: str, spec: dict) -> dict | None:
    """The pipeline spec as it runs on ``dataset`` (None: the pipeline skips it).

    ``datasets: [...]`` restricts a pipeline to some datasets (CCA to SSVEP, say); a
    ``{dataset}`` in ``backbone.checkpoint`` becomes the evaluated dataset's name.
    """
    spec = dict(spec)
    only = spec.pop("datasets", None)
    if only is not None and dataset not in only:
        return None
    backbone = dict(spec.get("backbone") or {})
    if backbone.get("checkpoint"):
        backbone["checkpoint"] = checkpoint_for(backbone["checkpoint"], dataset)
        spec["backbone"] = backbone
    return spec


def _dataset_folds(experiment: dict, dataset: str, store_root):
    """(labelled windows of ``dataset``, its protocol spec, its folds)."""
    windows = WindowDataset([Path(store_root) / dataset])
    windows = windows.subset(np.flatnonzero(windows.table["label"].to_numpy() >= 0))
    protocol_spec = experiment["protocols"].get(dataset) or experiment["protocols"]["default"]
    protocol = protocol_from_spec(protocol_spec)
    folds = list(protocol.split(windows.table))[:experiment.get("max_folds") or None]
    return windows, protocol_spec, folds


def run_benchmark(experiment: dict, store_root, out_dir, progress: bool = True,
                  report_dir=None) -> dict:
    """Run (or resume) an experiment: cells go to ``out_dir/cells`` (shared by re-runs and
    sweeps); results.csv, summary.md and plots of this experiment's cells go to
    ``report_dir`` (default ``out_dir``).

    ``experiment``: ``datasets`` (names of corpus stores), ``pipelines`` (name -> spec, see
    :func:`brainfm.bench.pipelines.make_pipeline`, plus optional ``datasets``), ``protocols``
    (dataset name or ``default`` -> protocol spec), ``seeds``, optional ``max_folds`` (quick
    variants) and ``allow_pretraining_overlap`` (default false).
    """
    from ..validate import bench_problems, raise_problems
    experiment = drop_null_entries(experiment)
    raise_problems("run_benchmark", bench_problems(experiment, store_root))
    out_dir = Path(out_dir)
    report_dir = Path(report_dir or out_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    store = ResultsStore(out_dir)
    cache_dir = Path(experiment.get("cache_dir") or out_dir / "features")
    computed = skipped = 0
    keys = []
    t0 = time.perf_counter()
    for dataset in experiment["datasets"]:
        windows, protocol_spec, folds = _dataset_folds(experiment, dataset, store_root)
        protocol_name = protocol_spec["name"]
        n_classes = len(windows.stores[0].classes)
        y_true = windows.table["label"].to_numpy()
        groups = subject_groups(windows.table)
        has_subjects = bool((windows.table["subject"].astype(str) != NO_SUBJECT).any())
        for pname, raw_spec in experiment["pipelines"].items():
            pipe_spec = _pipeline_for(dataset, raw_spec)
            if pipe_spec is None:
                continue
            checkpoint = (pipe_spec.get("backbone") or {}).get("checkpoint")
            weights = file_digest(checkpoint) if checkpoint else None
            if checkpoint and uses_pretrained_weights(pipe_spec):
                extra = read_model_file(checkpoint)[2]   # one read serves both checks
                if not experiment.get("allow_pretraining_overlap"):
                    check_pretraining_disjoint(checkpoint, dataset, windows.stores[0], extra)
                check_store_contract(windows.stores[0], extra.get("contract") or {})
            pipeline = make_pipeline(pipe_spec, cache_dir)
            for seed in experiment.get("seeds", [0]):
                bar = progress_bar(len(folds), f"{dataset} {pname} seed={seed}", progress,
                                   unit="fold")
                for split in folds:
                    config = {"dataset": dataset, "store": windows.stores[0].meta["config_hash"],
                              "pipeline": pname, "pipeline_spec": pipe_spec,
                              "protocol": protocol_spec, "seed": seed, "fold": split.name,
                              **({"checkpoint_sha1": weights} if weights else {})}
                    key = cell_key(config)
                    keys.append(key)
                    tested = ({_subject_of(g) for g in np.unique(groups[split.test])}
                              if has_subjects else ())
                    if store.has(key, config, tested):
                        skipped += 1
                    else:
                        started = time.perf_counter()
                        pred = pipeline.run_fold(windows, split, seed)
                        pred.info["seconds"] = round(time.perf_counter() - started, 2)
                        rows = _rows(dataset, pname, protocol_name, split.name, seed, groups,
                                     y_true, pred, n_classes, per_subject=has_subjects)
                        store.put(key, {**config, "info": pred.info}, rows)
                        computed += 1
                    bar.update(1)
                bar.close()
    table, cells = store.frames(keys)
    table.to_csv(report_dir / "results.csv", index=False)
    text = markdown(table, cells)
    (report_dir / "summary.md").write_text(text + "\n")
    figures = plots(table, report_dir) if not table.empty else []
    return {"computed": computed, "skipped": skipped, "seconds": time.perf_counter() - t0,
            "rows": len(table), "summary": text, "figures": [str(f) for f in figures],
            "report_dir": str(report_dir),
            "set_aside": [(str(cell), str(dest)) for cell, dest in store.set_aside]}

"""brainfm-bench: datasets x pipelines x protocols x seeds -> resumable cells -> tables, plots.

Each cell (one fold of one pipeline on one dataset under one protocol and seed) is keyed by
the hash of everything that determines it; a finished cell is read back, never recomputed.
Metrics are computed per test subject (per test recording where a dataset has none) and
pooled per fold, into one tidy table.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..data.groups import subject_groups
from ..data.loading import WindowDataset
from .metrics import classification_metrics
from .pipelines import make_pipeline
from .protocols import make_protocol
from .report import markdown, plots
from .results import ResultsStore, cell_key
from ..progress import progress_bar


def _rows(dataset, pipeline, protocol, fold, seed, groups, y_true, pred, n_classes):
    """Tidy records: per test group, then the fold's pooled scores (subject "__fold__")."""
    out = []
    for group in [*np.unique(groups[pred.rows]), "__fold__"]:
        pick = (np.ones(len(pred.rows), bool) if group == "__fold__"
                else groups[pred.rows] == group)
        scores = classification_metrics(
            y_true[pred.rows][pick], pred.y_pred[pick],
            None if pred.y_score is None else pred.y_score[pick], n_classes=n_classes)
        subject = group if group == "__fold__" else group.split("/", 1)[1]
        out += [dict(dataset=dataset, pipeline=pipeline, protocol=protocol, fold=fold,
                     subject=subject, seed=seed, metric=m, value=float(v))
                for m, v in scores.items()]
    return out


def run_benchmark(experiment: dict, store_root, out_dir, progress: bool = True) -> dict:
    """Run (or resume) an experiment; writes results.csv, summary.md and plots to out_dir.

    ``experiment``: ``datasets`` (names of corpus stores), ``pipelines`` (name -> spec, see
    :func:`brainfm.bench.pipelines.make_pipeline`), ``protocols`` (dataset name or
    ``default`` -> protocol spec), ``seeds``, optional ``max_folds`` (quick variants).
    """
    out_dir = Path(out_dir)
    store = ResultsStore(out_dir)
    cache_dir = Path(experiment.get("cache_dir") or out_dir / "features")
    computed = skipped = 0
    t0 = time.perf_counter()
    for dataset in experiment["datasets"]:
        windows = WindowDataset([Path(store_root) / dataset])
        windows = windows.subset(np.flatnonzero(windows.table["label"].to_numpy() >= 0))
        n_classes = len(windows.stores[0].classes)
        y_true = windows.table["label"].to_numpy()
        groups = subject_groups(windows.table)
        pspec = dict(experiment["protocols"].get(dataset) or experiment["protocols"]["default"])
        protocol_name = pspec.pop("name")
        protocol = make_protocol(protocol_name, **pspec)
        folds = list(protocol.split(windows.table))[:experiment.get("max_folds") or None]
        for pname, pipe_spec in experiment["pipelines"].items():
            pipeline = make_pipeline(pipe_spec, cache_dir)
            for seed in experiment.get("seeds", [0]):
                bar = progress_bar(len(folds), f"{dataset} {pname} seed={seed}", progress,
                                   unit="fold")
                for split in folds:
                    config = {"dataset": dataset, "store": windows.stores[0].meta["config_hash"],
                              "pipeline": pname, "pipeline_spec": pipe_spec,
                              "protocol": experiment["protocols"].get(dataset) or
                              experiment["protocols"]["default"],
                              "seed": seed, "fold": split.name}
                    key = cell_key(config)
                    if store.has(key):
                        skipped += 1
                    else:
                        pred = pipeline.run_fold(windows, split, seed)
                        rows = _rows(dataset, pname, protocol_name, split.name, seed, groups,
                                     y_true, pred, n_classes)
                        store.put(key, {**config, "info": pred.info}, rows)
                        computed += 1
                    bar.update(1)
                bar.close()
    table = store.table()
    table.to_csv(out_dir / "results.csv", index=False)
    text = markdown(table)
    (out_dir / "summary.md").write_text(text + "\n")
    figures = plots(table, out_dir) if not table.empty else []
    return {"computed": computed, "skipped": skipped, "seconds": time.perf_counter() - t0,
            "rows": len(table), "summary": text, "figures": [str(f) for f in figures]}

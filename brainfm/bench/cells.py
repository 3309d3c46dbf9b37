"""Benchmark cells: planned once by the parent, computed by whichever process an executor picks.

A cell is one fold of one pipeline on one dataset under one protocol and seed. Its config
(everything that determines its result) is also everything a worker needs to compute it, so
a cell travels to another process or node as a small dict and the worker rebuilds the fold
from the store by name. Checks that read checkpoints (pretraining leakage, data contract)
happen once, in :func:`plan_cells`; workers only read stores and write cells.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..checkpoint import read_model_file
from ..data.contract import check_store_contract
from ..data.groups import NO_SUBJECT, subject_groups
from ..data.loading import WindowDataset
from .metrics import classification_metrics
from .pipelines import make_pipeline, uses_pretrained_weights
from .pretrained import check_pretraining_disjoint, checkpoint_for
from .protocols import protocol_from_spec
from .results import ResultsStore, cell_key, file_digest


@dataclass(frozen=True)
class Cell:
    """``config``: dataset, store (its config hash), pipeline, pipeline_spec, protocol, seed,
    fold and, with a checkpoint, checkpoint_sha1; ``subjects``: the fold's test subjects (a
    stored cell must score each); ``estimate_s``: its expected compute time, for balancing
    jobs."""
    key: str
    config: dict
    estimate_s: float
    subjects: tuple = ()

    @property
    def label(self) -> str:
        c = self.config
        return f"{c['dataset']} {c['pipeline']} seed={c['seed']} {c['fold']}"


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


def _labelled_windows(store_root, dataset: str) -> WindowDataset:
    windows = WindowDataset([Path(store_root) / dataset])
    return windows.subset(np.flatnonzero(windows.table["label"].to_numpy() >= 0))


def _folds(windows: WindowDataset, protocol_spec: dict):
    return list(protocol_from_spec(protocol_spec).split(windows.table))


#: Relative cost of one training epoch (or one fit) per pipeline kind, per channel and window;
#: only the order of cells depends on it until the store holds measured durations.
_KIND_COST = {"classical": 0.2, "probe": 1.0, "eegnet": 1.0, "shallow": 1.0,
              "finetune": 3.0, "scratch": 3.0}


def _estimate_seconds(spec: dict, n_channels: int, n_windows: int,
                      measured: dict, dataset: str, pipeline: str) -> float:
    """Median measured seconds of this dataset x pipeline's stored cells, or a guess from the
    pipeline's kind, epochs and the dataset's size (in made-up but comparable units)."""
    if (dataset, pipeline) in measured:
        return measured[(dataset, pipeline)]
    epochs = spec.get("epochs", 50) if spec["kind"] not in ("classical", "probe") else 1
    return _KIND_COST.get(spec["kind"], 1.0) * epochs * n_channels * n_windows * 1e-4


def _measured_seconds(store: ResultsStore) -> dict:
    """(dataset, pipeline) -> median seconds of the cells already in ``store``."""
    cells = store.frames()[1]
    if cells.empty or "seconds" not in cells:
        return {}
    return cells.groupby(["dataset", "pipeline"])["seconds"].median().dropna().to_dict()


def plan_cells(experiment: dict, store_root, store: ResultsStore) -> list[Cell]:
    """Every cell of ``experiment``, in the order a serial run computes them, each checked
    (a checkpoint pretrained on the evaluated data, or trained under another data contract,
    is refused here, before any cell runs)."""
    measured = _measured_seconds(store)
    cells = []
    for dataset in experiment["datasets"]:
        windows = _labelled_windows(store_root, dataset)
        protocol_spec = experiment["protocols"].get(dataset) or experiment["protocols"]["default"]
        folds = _folds(windows, protocol_spec)[:experiment.get("max_folds") or None]
        n_channels = int(windows.table["n_channels"].max())
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
            estimate = _estimate_seconds(pipe_spec, n_channels, len(windows), measured,
                                         dataset, pname)
            for seed in experiment.get("seeds", [0]):
                for split in folds:
                    config = {"dataset": dataset, "store": windows.stores[0].meta["config_hash"],
                              "pipeline": pname, "pipeline_spec": pipe_spec,
                              "protocol": protocol_spec, "seed": seed, "fold": split.name,
                              **({"checkpoint_sha1": weights} if weights else {})}
                    tested = (tuple(sorted({_subject_of(g) for g in np.unique(groups[split.test])}))
                              if has_subjects else ())
                    cells.append(Cell(cell_key(config), config, estimate, tested))
    return cells


class CellComputer:
    """Computes cells into a results store, reusing within one process what cells of the same
    dataset (windows, folds) and pipeline (cached features) share."""

    def __init__(self, store_root, results_dir, cache_dir):
        self.store_root, self.cache_dir = Path(store_root), Path(cache_dir)
        self.store = ResultsStore(results_dir)
        self._datasets: dict[str, tuple] = {}
        self._pipelines: dict[tuple[str, str], object] = {}

    def _dataset(self, dataset: str, protocol_spec: dict):
        key = (dataset, repr(sorted(protocol_spec.items())))
        if key not in self._datasets:
            windows = _labelled_windows(self.store_root, dataset)
            self._datasets = {key: (windows, {s.name: s for s in _folds(windows, protocol_spec)})}
        return self._datasets[key]

    def compute(self, cell: Cell) -> bool:
        """Compute and store ``cell``; False when the store has it already (another writer
        got there first, or a re-queued job passes a cell it finished before)."""
        if self.store.has(cell.key, cell.config, cell.subjects):
            return False
        c = cell.config
        windows, splits = self._dataset(c["dataset"], c["protocol"])
        if windows.stores[0].meta["config_hash"] != c["store"]:
            raise RuntimeError(f"{self.store_root / c['dataset']}: the store changed since the "
                               "benchmark was planned; re-run brainfm-bench")
        pipeline_key = (c["dataset"], c["pipeline"])
        if pipeline_key not in self._pipelines:
            self._pipelines = {pipeline_key: make_pipeline(c["pipeline_spec"], self.cache_dir)}
        started = time.perf_counter()
        pred = self._pipelines[pipeline_key].run_fold(windows, splits[c["fold"]], c["seed"])
        pred.info["seconds"] = round(time.perf_counter() - started, 2)
        has_subjects = bool((windows.table["subject"].astype(str) != NO_SUBJECT).any())
        rows = _rows(c["dataset"], c["pipeline"], c["protocol"]["name"], c["fold"], c["seed"],
                     subject_groups(windows.table), windows.table["label"].to_numpy(), pred,
                     len(windows.stores[0].classes), per_subject=has_subjects)
        self.store.put(cell.key, {**c, "info": pred.info}, rows)
        return True

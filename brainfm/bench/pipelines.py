"""Pipelines: what a benchmark cell trains on a fold's training rows and predicts on its test rows.

Every pipeline has ``run_fold(windows, split, seed) -> FoldPrediction``; model selection (early
stopping, checkpoint choice) only ever looks at the fold's validation rows. A backbone enters
through its family's adapter (:mod:`brainfm.bench.adapters`).
"""
from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from ..checkpoint import read_model_file
from ..data.loading import WindowDataset, batch_loader
from ..models.contract import readout_layer_of
from .adapters import get_adapter
from .probe import FeatureCache, linear_probe


#: what :func:`make_pipeline` builds
PIPELINE_KINDS = ("classical", "probe", "finetune", "scratch", "eegnet", "shallow")
#: the kinds that can z-score their features per subject (:mod:`.subject_norm`)
SUBJECT_NORM_KINDS = ("classical", "probe")


@dataclass
class FoldPrediction:
    rows: np.ndarray                 # test rows of the window table
    y_pred: np.ndarray
    y_score: np.ndarray | None       # (n, n_classes) probabilities, when the model gives them
    info: dict = field(default_factory=dict)


def uses_pretrained_weights(spec: dict) -> bool:
    """Whether a pipeline spec starts from its checkpoint's weights: not when it trains from
    scratch or its backbone says ``pretrained: false`` (the architecture only)."""
    return spec.get("kind") != "scratch" and (spec.get("backbone") or {}).get("pretrained", True)


def load_backbone(spec: dict, n_classes: int, windows: WindowDataset,
                  pretrained: bool = True) -> torch.nn.Module:
    """A backbone of ``spec["family"]`` (default: the registry's default family) with a fresh classification head.

    ``spec``: ``checkpoint`` (a checkpoint folder) and/or ``model`` (constructor arguments), optional
    ``overrides`` and ``head`` (one of the family's heads, default ``pooled``).
    ``pretrained=False`` gives the same architecture randomly initialised.
    """
    adapter = get_adapter(spec.get("family"))
    model = adapter.load(spec, pretrained=pretrained)
    t = windows.table
    return adapter.classifier(model, spec.get("head", "pooled"), n_classes,
                              n_chans=int(t["n_channels"].max()),
                              n_patches=int(t["n_samples"].max()) // getattr(
                                  model, "patch_len", 1))


class ClassicalPipeline:
    """A scikit-learn baseline (CSP, tangent space, xDAWN, CCA, band power) on raw windows.

    ``subject_norm``: z-score the baseline's features within each subject
    (:func:`~brainfm.bench.subject_norm.standardise_per_subject`) between its feature steps,
    fitted on the training rows, and its last step, the classifier.
    """

    def __init__(self, name: str, subject_norm: bool = False, **kwargs):
        self.name, self.subject_norm, self.kwargs = name, bool(subject_norm), kwargs
        self._arrays: dict[int, tuple] = {}
        self._stateless: dict[int, np.ndarray] = {}

    def _data(self, windows: WindowDataset):
        from .baselines.classical import arrays_from_store

        key = id(windows)
        if key not in self._arrays:
            self._arrays = {key: arrays_from_store(windows)}
        return self._arrays[key]

    def _inputs(self, windows: WindowDataset, est):
        """(X, what to fit on X): the windows and the baseline, or, when the baseline's first
        step is stateless (band power, a log spectrum, a band-pass: ``stateless = True``),
        that step's output on every window of the dataset, computed once, and the remaining
        steps. It learns nothing, so folds get the same inputs; on eegmmidb_baseline's 64
        channels it was most of each fold's time."""
        X = self._data(windows)[0]
        first = est.steps[0][1] if hasattr(est, "steps") and len(est.steps) > 1 else None
        if not getattr(first, "stateless", False):
            return X, est
        if id(windows) not in self._stateless:
            self._stateless = {id(windows): first.transform(X)}
        return self._stateless[id(windows)], est[1:]

    def run_fold(self, windows: WindowDataset, split, seed: int) -> FoldPrediction:
        from .baselines import declared_band
        from .baselines.classical import _class_scores, make_baseline

        X, y = self._data(windows)
        store = windows.stores[0]
        est = make_baseline(self.name, classes=store.classes, sfreq=store.sfreq, **self.kwargs)
        if "random_state" in est.get_params():
            est.set_params(random_state=seed)
        info = {"band": declared_band(est), "window_s": round(X.shape[-1] / store.sfreq, 3),
                "subject_norm": self.subject_norm}
        X, est = self._inputs(windows, est)
        train, test = X[split.train], X[split.test]
        if self.subject_norm:
            if not hasattr(est, "steps"):
                raise ValueError(f"subject_norm: baseline {self.name!r} is no scikit-learn "
                                 "Pipeline with its classifier as last step, so it has no "
                                 "features to normalise -> drop subject_norm for it")
            features, est = est[:-1], est[-1]
            train = _per_subject(features.fit_transform(train, y[split.train]), split.train,
                                 windows)
            test = _per_subject(features.transform(test), split.test, windows)
        est.fit(train, y[split.train])
        return FoldPrediction(split.test, est.predict(test),
                              _class_scores(est, test, len(store.classes)), info)


def _per_subject(features: np.ndarray, rows, windows: WindowDataset) -> np.ndarray:
    """``features`` of the window ``rows`` (one side of a split), z-scored within each
    subject on these rows only: a subject on both sides of a split never lends the
    statistics of its test rows to its training rows. Labels never enter."""
    from .subject_norm import standardise_per_subject, subject_ids

    return standardise_per_subject(features, subject_ids(windows.table)[rows])


def _per_subject_sides(features: np.ndarray, windows: WindowDataset, split) -> np.ndarray:
    """A copy of per-window ``features`` of any shape (n, ...) whose training, validation
    and test rows are each normalised by :func:`_per_subject`; other rows are left as
    they are (no fold reads them)."""
    out = np.array(features, dtype=np.float64)
    for rows in (split.train, split.val, split.test):
        if len(rows):
            flat = out[rows].reshape(len(rows), -1)
            out[rows] = _per_subject(flat, rows, windows).reshape(out[rows].shape)
    return out


PROBE_READOUTS = ("recorded", "last", "best_layer", "attention")


class ProbePipeline:
    """Frozen backbone features (cached once per weights, store and read-out) + a classifier.

    ``readout``: ``recorded`` (the default) pools the layer the checkpoint records as its
    read-out (the last when it records none; the same layer for its random initialisation);
    ``last`` pools the last layer (mean over real channels and patches) for a linear probe;
    ``best_layer`` pools every layer and keeps, per fold, the one whose linear
    probe (fitted on the training rows) scores best on the fold's validation rows;
    ``attention`` reads the last layer's tokens through an attention-pooling probe
    (:mod:`brainfm.bench.attention_probe`). Each row records the read-out it used.
    ``subject_norm``: every feature (of every layer or token) z-scored within each subject
    before the read-out, on each side of the split separately (see :func:`_per_subject`).
    """

    def __init__(self, backbone: dict, cache_dir, readout: str = "recorded",
                 subject_norm: bool = False):

        if readout not in PROBE_READOUTS:
            raise ValueError(f"probe readout={readout!r}; use one of {', '.join(PROBE_READOUTS)}")
        self.backbone, self.cache, self.readout = backbone, FeatureCache(cache_dir), readout
        self.subject_norm = bool(subject_norm)
        self.adapter = get_adapter(backbone.get("family"))
        self.pretrained = uses_pretrained_weights({"backbone": backbone})
        self._features: dict[tuple, np.ndarray] = {}
        self.layer = recorded_layer(backbone) if readout == "recorded" else None

    def _extract(self, model, windows):
        from .probe import extract_features, extract_tokens

        if self.readout in ("last", "recorded") and self.layer is None:
            return self.cache.features(model, windows, self.adapter.features)[0]
        if self.readout == "recorded":
            layer, layers = self.layer, self.adapter.layer_features
            return self.cache.features(
                model, windows, lambda m, *inputs: layers(m, *inputs)[layer],
                readout=f"layer{layer}", extract=extract_features)[0]
        if self.readout == "attention":
            return self.cache.features(model, windows, self.adapter.features,
                                       readout="tokens", extract=extract_tokens)[0]
        layers = self.adapter.layer_features          # pooled to (n_windows, layers, D)
        stacked = lambda m, *inputs: torch.stack(layers(m, *inputs), dim=3)  # noqa: E731
        return self.cache.features(model, windows, stacked, readout="layers",
                                   extract=extract_features)[0]

    def _data(self, windows: WindowDataset, seed: int) -> np.ndarray:
        """The dataset's features, built (or read from the disk cache) once, not per fold.

        A random backbone's initialisation follows the seed (one per seed, shared by that
        seed's folds), so that seeds sample initialisations; pretrained weights do not
        depend on it.
        """
        key = (id(windows), seed if not self.pretrained else None)
        if key not in self._features:
            torch.manual_seed(seed)
            model = self.adapter.load(self.backbone, pretrained=self.pretrained)
            self._features = {key: self._extract(model, windows)}
        return self._features[key]

    def run_fold(self, windows: WindowDataset, split, seed: int) -> FoldPrediction:
        n_classes = len(windows.stores[0].classes)
        feats = self._data(windows, seed)
        y = windows.table["label"].to_numpy()
        info = {"readout": self.readout, "subject_norm": self.subject_norm}
        if self.layer is not None:
            info["layer"] = self.layer
        if self.subject_norm:
            feats = _per_subject_sides(feats, windows, split)
        if self.readout == "best_layer":
            layer = self._pick_layer(feats, y, split, seed)
            feats, info["layer"] = feats[:, layer], layer
        if self.readout == "attention":
            from .attention_probe import AttentionPoolProbe

            tokens = feats.reshape(len(feats), -1, feats.shape[-1])
            clf = AttentionPoolProbe(seed=seed).fit(tokens[split.train], y[split.train])
            proba = np.zeros((len(split.test), n_classes))
            proba[:, clf.classes_] = clf.predict_proba(tokens[split.test])
            return FoldPrediction(split.test, clf.predict(tokens[split.test]), proba, info)
        clf = linear_probe(seed).fit(feats[split.train], y[split.train])
        return FoldPrediction(split.test, clf.predict(feats[split.test]),
                              _full_proba(clf, feats[split.test], n_classes), info)

    @staticmethod
    def _pick_layer(feats: np.ndarray, y: np.ndarray, split, seed: int) -> int:
        """The layer whose linear probe, fitted on the training rows, has the best balanced
        accuracy on the validation rows (the last layer when a fold has none)."""
        from sklearn.metrics import balanced_accuracy_score

        if len(split.val) == 0:
            return feats.shape[1] - 1
        scores = [balanced_accuracy_score(
            y[split.val], linear_probe(seed).fit(feats[split.train, k], y[split.train])
            .predict(feats[split.val, k])) for k in range(feats.shape[1])]
        return int(np.argmax(scores))


class NeuralPipeline:
    """Fine-tuning (a checkpoint), from scratch (a config), or a compact CNN (eegnet/shallow).

    One recipe for all of them (see :mod:`brainfm.tasks.classify`): ``epochs`` of warm-up
    then cosine decay, label smoothing, clipping at 1; fine-tuning and scratch given the same
    settings train for the same budget. With validation rows the kept weights are those of
    the epoch with the best validation ``select`` score (``auto``: AUROC for binary tasks,
    loss otherwise), recorded as ``selected_epoch``; ``patience`` (None: off) stops early.
    With ``cache_dir``, a backbone family that trains only a head on a frozen backbone reads
    the backbone's outputs from a cache there (the adapter's ``cached_inputs``).
    """

    def __init__(self, kind: str, backbone: dict | None = None, epochs: int = 50,
                 patience: int | None = None, batch_size: int = 64, backbone_lr: float = 1e-4,
                 head_lr: float = 5e-4, layer_decay: float | None = None,
                 weight_decay: float = 0.05, label_smoothing: float = 0.1,
                 warmup_epochs: float = 0.0, min_lr: float = 1e-6, select: str = "auto",
                 grad_clip: float = 1.0, cache_dir=None):
        self.kind, self.backbone, self.epochs, self.patience = kind, backbone, epochs, patience
        self.cache_dir = cache_dir
        self.batch_size, self.select, self.grad_clip = batch_size, select, grad_clip
        self.opt = dict(backbone_lr=backbone_lr, head_lr=head_lr, layer_decay=layer_decay,
                        weight_decay=weight_decay, label_smoothing=label_smoothing,
                        warmup_epochs=warmup_epochs, min_lr=min_lr)

    def _model(self, windows: WindowDataset, n_classes: int) -> torch.nn.Module:
        if self.kind in ("eegnet", "shallow"):
            from ..models.compact import EEGNet, ShallowConvNet

            t = windows.table
            cls = EEGNet if self.kind == "eegnet" else ShallowConvNet
            return cls(n_chans=int(t["n_channels"].max()), n_outputs=n_classes,
                       n_times=int(t["n_samples"].iloc[0]), sfreq=windows.stores[0].sfreq)
        spec = self.backbone or {}
        return load_backbone(spec, n_classes, windows, pretrained=uses_pretrained_weights(
            {"kind": self.kind, "backbone": spec}))

    def _inputs(self, model: torch.nn.Module, windows: WindowDataset):
        """What ``model`` trains and predicts on: ``windows``, or its family's cached
        backbone outputs for the same rows."""
        if self.cache_dir is None or self.kind in ("eegnet", "shallow"):
            return windows

        adapter = get_adapter((self.backbone or {}).get("family"))
        return adapter.cached_inputs(model, windows, self.cache_dir, self.batch_size)

    def run_fold(self, windows: WindowDataset, split, seed: int,
                 callbacks=()) -> FoldPrediction:
        """``callbacks``: extra Lightning callbacks (a learning-curve recorder, say)."""
        with quiet_lightning():
            return self._run_fold(windows, split, seed, list(callbacks))

    def _run_fold(self, windows: WindowDataset, split, seed: int,
                  extra_callbacks: list) -> FoldPrediction:
        import lightning as L
        from lightning.pytorch.callbacks import EarlyStopping

        from ..tasks.classify import FineTuning, balanced_class_weights, selection_metric

        L.seed_everything(seed, workers=True, verbose=False)   # the initialisation too
        n_classes = len(windows.stores[0].classes)
        model = self._model(windows, n_classes)
        windows = self._inputs(model, windows)
        train = windows.subset(split.train)
        task = FineTuning(model, n_classes,
                          class_weights=balanced_class_weights(
                              train.table["label"].to_numpy(), n_classes), **self.opt)
        has_val = len(split.val) > 0
        callbacks = []
        if has_val:
            monitor, mode = selection_metric(self.select, n_classes)
            callbacks = [BestWeights(monitor, mode)]
            if self.patience:
                callbacks.append(EarlyStopping(monitor, mode=mode, patience=self.patience))
        trainer = L.Trainer(max_epochs=self.epochs, accelerator="auto", devices=1,
                            logger=False, enable_progress_bar=False,
                            enable_model_summary=False, callbacks=callbacks + extra_callbacks,
                            enable_checkpointing=False, gradient_clip_val=self.grad_clip,
                            num_sanity_val_steps=0)
        val = (batch_loader(windows.subset(split.val), self.batch_size, False, seed)
               if has_val else None)
        trainer.fit(task, batch_loader(train, self.batch_size, True, seed), val)
        info = {"epochs": int(trainer.current_epoch)}
        if has_val and callbacks[0].state is not None:  # the weights validation chose
            task.load_state_dict(callbacks[0].state)
            info |= {"selected_epoch": callbacks[0].epoch, "selected_on": monitor,
                     "best_" + monitor.replace("/", "_"): callbacks[0].best,
                     "val_curve": callbacks[0].curve}
        test = windows.subset(split.test)
        outs = trainer.predict(task, batch_loader(test, self.batch_size, False, seed))
        proba = torch.cat([o["proba"] for o in outs]).numpy()
        local = torch.cat([o["row"] for o in outs]).numpy()
        order = np.argsort(local)
        proba = proba[order]
        return FoldPrediction(np.asarray(split.test)[np.sort(local)], proba.argmax(1), proba,
                              info)


@contextmanager
def quiet_lightning():
    """No per-fold banners (accelerator lines, tips, a torch-version deprecation notice):
    a benchmark trains hundreds of folds and its own progress bar says where it is."""
    loggers = [logging.getLogger(name) for name in
               ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*LeafSpec.*is deprecated")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


class BestWeights(Callback):
    """Keeps, in memory, the weights of the epoch with the best validation score, which epoch
    that was (1-based) and every epoch's score (the validation curve)."""

    def __init__(self, monitor: str, mode: str = "max"):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self.monitor, self.mode = monitor, mode
        self.best = float("inf") if mode == "min" else float("-inf")
        self.state, self.epoch, self.curve = None, None, []

    def on_validation_end(self, trainer, module) -> None:
        score = trainer.callback_metrics.get(self.monitor)
        if score is None or trainer.sanity_checking:
            return
        score = float(score)
        self.curve.append(round(score, 5))
        better = score < self.best if self.mode == "min" else score > self.best
        if better:
            self.best, self.epoch = score, int(trainer.current_epoch) + 1
            self.state = {k: v.detach().clone() for k, v in module.state_dict().items()}


def _full_proba(clf, X, n_classes: int) -> np.ndarray:
    """Probabilities for every class, zeros for classes a fold's training rows lacked."""
    out = np.zeros((len(X), n_classes))
    out[:, clf.classes_] = clf.predict_proba(X)
    return out


def recorded_layer(backbone: dict) -> int | None:
    """The read-out layer a backbone spec's checkpoint records (None: the last layer, or no
    checkpoint)."""
    checkpoint = backbone.get("checkpoint")
    if not checkpoint:
        return None

    return readout_layer_of(read_model_file(checkpoint)[2])


def make_pipeline(spec: dict, cache_dir):
    """A pipeline from its config: ``{"kind": <one of PIPELINE_KINDS>, ...}``."""
    spec = dict(spec)
    kind = spec.pop("kind")
    spec.pop("name", None)
    if kind == "classical":
        return ClassicalPipeline(spec.pop("baseline"), **spec)
    if kind == "probe":
        return ProbePipeline(spec["backbone"], cache_dir,
                             readout=spec.get("readout", "recorded"),
                             subject_norm=spec.get("subject_norm", False))
    if kind not in PIPELINE_KINDS:
        raise ValueError(f"pipeline kind {kind!r}; use one of {list(PIPELINE_KINDS)}")
    if spec.pop("subject_norm", False):
        raise ValueError(f"subject_norm: a {kind} pipeline trains on windows, not on "
                         "features it could normalise -> drop subject_norm for it")
    return NeuralPipeline(kind, cache_dir=cache_dir, **spec)

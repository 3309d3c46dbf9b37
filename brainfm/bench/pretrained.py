"""Pretrained checkpoints for a benchmark: made when missing, never trained on the test data.

A benchmark config may carry a ``pretrained`` block::

    pretrained:
      experiment: pretrain_all            # a brainfm-pretrain experiment
      datasets: [eegmat, ssvep_exoskeleton, muse_p300, bonn, delhi]   # pretraining corpus
      leave_dataset_out: true             # one checkpoint per evaluated dataset, without it
      path: checkpoints/bench/without_{dataset}   # a checkpoint folder each
      overrides: [trainer.max_steps=1000]

Pipelines then point at ``${pretrained.path}``; the runner fills ``{dataset}`` per evaluated
dataset; :func:`brainfm.bench.sweep.ensure_pretrained` makes what is missing. A checkpoint whose pretraining corpus contains the evaluated dataset, by name or by
recording (the same files under another name), is refused
(:func:`check_pretraining_disjoint`): self-supervised pretraining on the test subjects'
recordings is a transductive advantage the baselines do not get.
"""
from __future__ import annotations

import warnings

from ..checkpoint import read_model_file
from .protocols import LeakageError


class UnlearnedCheckpointWarning(UserWarning):
    """A checkpoint that does not beat the trivial predictors on held-out subjects."""


_WARNED: set[str] = set()


def checkpoint_for(path_template: str, dataset: str) -> str:
    return str(path_template).replace("{dataset}", dataset)


def pretraining_corpus(spec: dict, dataset: str) -> list[str]:
    """The datasets the checkpoint used for ``dataset`` is pretrained on."""
    corpus = list(spec["datasets"])
    if spec.get("leave_dataset_out", True):
        corpus = [d for d in corpus if d != dataset]
    if not corpus:
        raise ValueError(f"pretrained.datasets leaves nothing to pretrain on once {dataset!r} "
                         "is held out; add other datasets")
    return corpus


def pretraining_gate(extra: dict) -> dict[str, float] | None:
    """Held-out datasets on which the model did NOT beat the best trivial predictor
    (model MSE / best trivial MSE, >= 1), from a model file's training summary; None when
    the file has no held-out figures (an imported or pre-0.2 model)."""
    training = extra.get("training") or {}
    heldout = training.get("heldout") or {}
    rep = training.get("representation") or {}
    if not heldout and not rep:   # a latent-prediction run has no bar, only its collapse watch
        return None
    failing = {name: row["model_vs_best_trivial"] for name, row in heldout.items()
               if row.get("multichannel") and row.get("model_vs_best_trivial", 0.0) >= 1.0}
    # objectives other than reconstruction are judged on their own spectral bar, if any,
    # and every objective on whether its representation collapsed
    failing.update({f"{name} (band power)": row["band_power_vs_channel_mean"]
                    for name, row in heldout.items() if row.get("multichannel", True)
                    and row.get("band_power_vs_channel_mean", 0.0) >= 1.0})
    if rep.get("collapsed"):
        failing["representation collapsed (effective rank)"] = rep["effective_rank"]
    return failing


def warn_if_unlearned(checkpoint, extra: dict) -> None:
    """Warn (once per checkpoint) when a checkpoint is not a pretrained model in the sense
    that matters: beating copying its neighbours on held-out subjects."""
    key = str(checkpoint)
    failing = pretraining_gate(extra)
    if key in _WARNED or failing == {}:  # seen already, or it passes
        return
    _WARNED.add(key)
    if failing is None:
        why = "its model file has no held-out figures beside the trivial predictors"
    else:
        why = "on held-out subjects it does not beat the best trivial predictor for " + \
            ", ".join(f"{d} (model/trivial MSE {r:.3f})" for d, r in sorted(failing.items()))
    warnings.warn(f"\n{'!' * 78}\nCHECKPOINT {checkpoint} IS NOT A WORKING PRETRAINED MODEL: "
                  f"{why}. 'pretrained' rows built on it measure a barely trained network; "
                  f"see docs/pretraining.md.\n{'!' * 78}", UnlearnedCheckpointWarning,
                  stacklevel=2)


def check_pretraining_disjoint(checkpoint, dataset: str, store=None,
                               extra: dict | None = None) -> list[str]:
    """The checkpoint's pretraining datasets; raises when the evaluated ``dataset`` is among
    them by name, or when any of its recordings (``store``, a CorpusStore) is among the
    checkpoint's pretraining recordings under whatever name. ``extra``: the file's metadata
    when the caller has read it already."""
    if extra is None:
        extra = read_model_file(checkpoint)[2]
    warn_if_unlearned(checkpoint, extra)
    corpus = list(extra.get("datasets") or [])
    fix = ("-> pretrain without it (pretrained.leave_dataset_out: true, or leave it out of "
           "pretrained.datasets) or set allow_pretraining_overlap: true and report the "
           "result as transductive")
    if dataset in corpus:
        raise LeakageError(f"{checkpoint} was pretrained on {dataset!r} ({', '.join(corpus)}), "
                           f"the dataset being evaluated {fix}")
    if store is not None:
        ours = store.recording_ids()
        shared = sorted(set(ours) & set(extra.get("recording_ids") or []))
        if shared:
            examples = ", ".join(ours[i] for i in shared[:3])
            raise LeakageError(f"{checkpoint} was pretrained on {len(shared)} of the "
                               f"{len(ours)} recordings of {dataset!r} (e.g. {examples}), "
                               f"under the dataset name(s) {', '.join(corpus)} {fix}")
    return corpus

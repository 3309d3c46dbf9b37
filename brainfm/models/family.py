"""What brainfm knows about one model family, in one record.

A family is one module under :mod:`brainfm.models.families` (or a user's own module) that
builds one :class:`Family` and registers it (:func:`brainfm.models.registry.register_family`).
Everything else in brainfm asks the record: which class a config builds, how the model tells
channels apart (its data contract), which heads the benchmark can put on it and what it
trains on, which pretraining tasks train it, and which foreign state dicts it imports.

The record stays in models/ (no Lightning): pretraining tasks are named by import path
(``"package.module:Class"``) or given as classes, and resolved by brainfm.tasks.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from torch import nn


@dataclass(frozen=True)
class ImportFormat:
    """A state dict saved by another project's code that this family loads.

    ``recognises(state)`` says whether a state dict is one; ``convert(state)`` renames it to
    the family's layout; ``config(state)`` gives the constructor arguments that fit it;
    ``extra`` is what the format implies about the data (e.g. the original's standardisation).
    """

    name: str
    recognises: Callable[[dict], bool]
    convert: Callable[[dict], dict]
    config: Callable[[dict], dict]
    extra: dict = field(default_factory=dict)


def resolve(ref):
    """A class given as itself or as ``"package.module:Name"``."""
    if not isinstance(ref, str):
        return ref
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class Family:
    """One model family.

    - ``name``: what config.json's ``family`` and ``model.family`` say;
    - ``model_class``: built from an architecture config (``model_class(**config)``); it has
      ``config``, ``patch_len``, ``channel_encoding()``, ``forward_features`` and
      ``forward_layers`` (brainfm.models.contract.ContractMixin);
    - ``default_config``: the packaged model config (``conf/model/<name>.yaml``) a run of
      this family starts from; ``small_config``: the smallest model that runs every command
      (tests, demos);
    - ``channel_encoding(config)``: how a model of ``config`` tells channels apart (one of
      brainfm.data.contract.ENCODINGS);
    - ``heads`` and ``classifier(model, head, n_classes, n_chans, n_patches)``: what the
      benchmark fine-tunes (a module ``model(x, sensors, channel_mask) -> logits`` with
      ``head`` and ``layers``); ``cached_inputs(classifier, windows, cache_dir, batch_size)``
      when the classifier trains on cached backbone outputs instead of windows;
    - ``tasks``: pretraining task kind -> task class (or its import path), the first the
      default; ``task_markers``: hyperparameters only this family's tasks save (to recognise
      Lightning checkpoints written before tasks recorded their family);
    - ``import_formats``: foreign state dicts the family loads;
    - ``description``: one line for the model card.
    """

    name: str
    model_class: type[nn.Module]
    default_config: str
    small_config: dict
    channel_encoding: Callable[[dict], str]
    heads: tuple[str, ...]
    classifier: Callable[..., nn.Module]
    tasks: dict
    description: str
    cached_inputs: Callable | None = None
    task_markers: tuple[str, ...] = ()
    import_formats: tuple[ImportFormat, ...] = ()

    def build(self, config: dict) -> nn.Module:
        """An untrained model of this family (a ``family`` key in ``config`` is dropped)."""
        return self.model_class(**{k: v for k, v in dict(config).items() if k != "family"})

    @property
    def default_task(self) -> str:
        return next(iter(self.tasks))

    def task_class(self, kind: str):
        """The pretraining task class of ``kind``; an error naming the family's tasks."""
        if kind not in self.tasks:
            raise ValueError(f"task {kind!r} does not train a {self.name} backbone; the "
                             f"{self.name} family trains with task {', '.join(self.tasks)}")
        return resolve(self.tasks[kind])

    def objectives(self, kind: str | None = None) -> tuple[str, ...]:
        """The objectives (pretext targets) the task ``kind`` (default: the first) offers."""
        return tuple(getattr(self.task_class(kind or self.default_task), "OBJECTIVES", ()))

    def check_head(self, head: str) -> None:
        if head not in self.heads:
            raise ValueError(f"backbone family {self.name!r} has no head {head!r}; "
                             f"use one of {', '.join(self.heads)}")

    def inputs_for(self, classifier: nn.Module, windows, cache_dir, batch_size: int = 64):
        """What ``classifier`` trains on: the windows, or the family's cached inputs."""
        if self.cached_inputs is None:
            return windows
        return self.cached_inputs(classifier, windows, Path(cache_dir), batch_size)


__all__ = ["Family", "ImportFormat", "resolve"]

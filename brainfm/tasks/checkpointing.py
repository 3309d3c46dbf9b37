"""Nothing lost: run checkpoints every N steps, every M minutes and on a stop signal, and a
metrics file that a resumed run continues instead of replacing.

``last.ckpt`` is rewritten atomically (a temporary file renamed over it), so a kill -9 at any
instant leaves either the previous checkpoint or the new one. SIGTERM, SIGINT (Ctrl-C) and
SIGUSR1 (SLURM's pre-emption warning, ``sbatch --signal=USR1@90``) write a checkpoint at the
end of the running batch and stop the run with exit code 128 + the signal number; a second
Ctrl-C interrupts at once.

Lightning resumes a checkpoint written at a batch end after that batch: the batch's metrics
row and, at an epoch end, that epoch's validation are not repeated. So the rows logged up to
step ``global_step - 1`` belong to the checkpoint (they are flushed before the next batch
starts) and a resumed run keeps exactly those.
"""
from __future__ import annotations

import csv
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import lightning as L
from lightning.pytorch.loggers import CSVLogger

from ..errors import BrainfmError

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)
LAST = "last.ckpt"


class RunStopped(SystemExit):
    """Raised between batches after a stop signal's checkpoint is written."""


class RunCheckpoint(L.Callback):
    """``<dirpath>/last.ckpt`` every ``every_n_steps`` optimiser steps, every
    ``every_minutes`` minutes of training (on a slow machine N steps can be hours a kill -9
    would lose), at the end of training, and when a stop signal arrives (then the run stops;
    :attr:`stopped_by` names the signal).
    With ``keep_every_n_steps``, a copy ``step-NNNNNNN.ckpt`` is also kept every that many
    steps, so a run can be scored against training step afterwards.

    Put it first among the callbacks, so that nothing logs for a batch that will not run.
    """

    def __init__(self, dirpath, every_n_steps: int = 200, keep_every_n_steps: int | None = None,
                 every_minutes: float | None = 10.0):
        for key, value in (("checkpoint_every_n_steps", every_n_steps),
                           ("checkpoint_keep_every_n_steps", keep_every_n_steps),
                           ("checkpoint_every_minutes", every_minutes)):
            if value is not None and not (isinstance(value, (int, float)) and value >= 0):
                raise BrainfmError(f"{key}={value!r}; use a positive number, or 0 (null) for "
                                   "none")
        self.dirpath = Path(dirpath)
        self.every_n_steps = int(every_n_steps or 0)
        self.every_s = float(every_minutes or 0) * 60
        self._saved_at = time.monotonic()
        self.keep_every_n_steps = int(keep_every_n_steps or 0)
        self.stopped_by: int | None = None
        self._pending: int | None = None
        self._saved_step = -1
        self._flush_next = False
        self._previous: dict = {}

    @property
    def state_key(self) -> str:
        return "brainfm.RunCheckpoint"

    # ---- signals --------------------------------------------------------------------------
    def _on_signal(self, signum, frame) -> None:
        if self._pending is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        self._pending = signum

    def on_train_start(self, trainer, pl_module) -> None:
        self._saved_at = time.monotonic()
        for sig in STOP_SIGNALS:
            try:
                self._previous[sig] = signal.signal(sig, self._on_signal)
            except ValueError:  # not the main thread (e.g. inside a notebook worker)
                break

    def _restore_signals(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    # ---- saving ---------------------------------------------------------------------------
    def save(self, trainer) -> Path:
        """Write ``last.ckpt`` atomically (every rank must call this: it synchronises)."""
        final = self.dirpath / LAST
        tmp = self.dirpath / f".{LAST}.partial"
        trainer.save_checkpoint(tmp)
        if trainer.is_global_zero:
            os.replace(tmp, final)
        trainer.strategy.barrier("brainfm.RunCheckpoint")
        self._saved_step = trainer.global_step
        self._saved_at = time.monotonic()
        self._flush_next = True
        return final

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        stop = trainer.strategy.reduce_boolean_decision(self._pending is not None, all=False)
        if stop and self.stopped_by is None:
            self.stopped_by = self._pending or signal.SIGTERM
            path = self.save(trainer)
            if trainer.is_global_zero:
                print(f"brainfm: {signal.Signals(self.stopped_by).name} received: checkpoint "
                      f"at step {step} written to {path}; resume with resume={path}",
                      file=sys.stderr, flush=True)
            return
        due = bool(self.every_n_steps) and step % self.every_n_steps == 0
        if self.every_s:  # clocks differ between ranks: any rank's deadline counts for all
            late = time.monotonic() - self._saved_at >= self.every_s
            due = trainer.strategy.reduce_boolean_decision(late, all=False) or due
        if due and step != self._saved_step:
            self.save(trainer)
        if self.keep_every_n_steps and step % self.keep_every_n_steps == 0:
            self.keep(trainer)

    def keep(self, trainer) -> Path:
        """``step-NNNNNNN.ckpt``: a hard link to (or copy of) this step's ``last.ckpt``."""
        if self._saved_step != trainer.global_step:
            self.save(trainer)
        path = self.dirpath / f"step-{trainer.global_step:07d}.ckpt"
        if trainer.is_global_zero and not path.exists():
            tmp = self.dirpath / f".{path.name}.partial"
            try:
                os.link(self.dirpath / LAST, tmp)
            except OSError:  # file systems without hard links
                shutil.copyfile(self.dirpath / LAST, tmp)
            os.replace(tmp, path)
        return path

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        """The previous batch's rows (and its epoch's validation) are logged by now: write
        them to disk; after a stop signal, stop before this batch runs."""
        if self._flush_next:
            if trainer.logger is not None:
                trainer.logger.save()
            self._flush_next = False
        if self.stopped_by is not None:
            raise RunStopped(128 + int(self.stopped_by))

    def on_train_end(self, trainer, pl_module) -> None:
        if self._pending is not None and self.stopped_by is None:  # arrived after the last batch
            self.stopped_by = self._pending
        if trainer.global_step != self._saved_step:
            self.save(trainer)
        self._restore_signals()

    def on_exception(self, trainer, pl_module, exception) -> None:
        self._restore_signals()


class ResumableCSVLogger(CSVLogger):
    """Lightning's CSV logger, except that a run resumed in the same folder keeps the rows
    its checkpoint covers (Lightning's own writer deletes metrics.csv on start).

    ``resume_step``: the checkpoint's global step; rows logged at that step or later were
    written after the checkpoint and are logged again by the resumed run, so they are dropped.
    """

    def __init__(self, save_dir, resume_step: int | None = None, **kwargs):
        super().__init__(save_dir, name="", version="", **kwargs)
        path = Path(self.log_dir) / "metrics.csv"
        self._kept: list[dict] = []
        if resume_step is not None and path.exists():
            with open(path, newline="") as fh:
                self._kept = [{k: _number(v) for k, v in row.items() if v not in ("", None)}
                              for row in csv.DictReader(fh)
                              if row.get("step") and int(float(row["step"])) < resume_step]

    @property
    def experiment(self):
        fresh = self._experiment is None
        writer = super().experiment
        if fresh and self._kept:
            writer.metrics[:0] = self._kept  # written with the first save, before new rows
            self._kept = []
        return writer


def _number(text: str):
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() and "." not in text and "e" not in text else value


def checkpoint_step(path) -> int:
    """The optimiser step a Lightning checkpoint was written at, read with
    ``weights_only=True`` (no pickled code runs); a clear error for a missing or damaged file."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise BrainfmError(f"resume={path}: no such checkpoint; a run writes "
                           f"<run>/checkpoints/{LAST} every checkpoint_every_n_steps steps "
                           "and when stopped by a signal -> check the run folder")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        return int(ckpt["global_step"])
    except Exception as err:
        raise BrainfmError(f"resume={path}: cannot read the checkpoint ({type(err).__name__}: "
                           f"{err}); it may be truncated -> resume from another copy") from err


def pretrain_logger(kind: str, out_dir, resume=None):
    """The run's metrics logger; a resumed CSV log continues the earlier rows."""
    if kind == "tensorboard":
        return L.pytorch.loggers.TensorBoardLogger(out_dir, name="", version="")
    if kind != "csv":
        raise BrainfmError(f"logger={kind!r}; use csv or tensorboard")
    return ResumableCSVLogger(out_dir, resume_step=checkpoint_step(resume) if resume else None)


def finish_or_stop(run_checkpoint: RunCheckpoint, trainer) -> None:
    """After ``fit``: a run stopped by a signal exits with 128 + the signal number (its
    checkpoint is written; nothing is exported), and a run that took no training step
    exports nothing."""
    if run_checkpoint.stopped_by is not None:
        raise RunStopped(128 + int(run_checkpoint.stopped_by))
    if trainer.global_step == 0:
        raise BrainfmError("no training step ran (the training set is empty or max_steps=0); "
                           "nothing exported -> check the stores' recordings.parquet for "
                           "failed recordings and data.max_abs for rejected windows")

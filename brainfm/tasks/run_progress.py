"""A line of progress every so often when no progress bar is drawn (the benchmark's
``pretrained`` block, batch jobs): the step, the held-out figures and the time left, so a
long pretraining is never minutes of silence."""
from __future__ import annotations

import sys
import time

import lightning as L

from ..errors import BrainfmError

#: Held-out figures, in order of preference (masked-patch: model vs the best trivial
#: predictor; any task: the validation loss).
HELDOUT_KEYS = ("val/worst_model_vs_best_trivial", "val/loss")


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


class RunProgress(L.Callback):
    """Print ``brainfm-pretrain: step S/N (P%), held-out ..., about T left`` every
    ``every_s`` seconds of training (and at the end), on rank 0 only."""

    def __init__(self, every_s: float = 30.0, stream=None):
        if isinstance(every_s, bool) or not isinstance(every_s, (int, float)) or every_s <= 0:
            raise BrainfmError(f"progress_every_s={every_s!r}; use a number of seconds > 0")
        self.every_s = float(every_s)
        self.stream = stream
        self._t0 = self._last = 0.0
        self._step0 = 0

    def on_train_start(self, trainer, pl_module) -> None:
        self._t0 = self._last = time.monotonic()
        self._step0 = trainer.global_step

    def line(self, trainer) -> str:
        step, total = trainer.global_step, trainer.max_steps
        if total is None or total < 0:
            total = int(trainer.estimated_stepping_batches)
        done = step - self._step0
        elapsed = time.monotonic() - self._t0
        text = f"brainfm-pretrain: step {step}/{total} ({100 * step / max(total, 1):.0f}%)"
        metrics = trainer.callback_metrics
        held = [f"{key} {float(metrics[key]):.4g}" for key in HELDOUT_KEYS if key in metrics]
        text += ", held-out " + ", ".join(held) if held else ", no held-out check yet"
        if done > 0:
            left = (total - step) * elapsed / done
            text += f", {elapsed / done:.2f} s/step, about {_minutes(left)} left"
        return text

    def _print(self, trainer) -> None:
        if trainer.is_global_zero:
            print(self.line(trainer), file=self.stream or sys.stderr, flush=True)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now = time.monotonic()
        if now - self._last >= self.every_s:
            self._last = now
            self._print(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        self._print(trainer)


__all__ = ["RunProgress"]

"""Quiet, single-copy console output for brainfm's commands.

Hydra's logging config (``conf/hydra/job_logging/brainfm.yaml``) sends every log record to the
run's log file and only warnings and errors to the console. Lightning adds a console handler
of its own to the ``lightning`` logger when it is imported, which doubled every line under
Hydra (``INFO: ...`` and ``[...][lightning...][INFO] - ...``); it advertises products in
``💡 Tip`` lines, and a few of its warnings are about its own internals or about folders
brainfm creates on purpose. :func:`quiet_libraries` removes those, and nothing else: real
warnings (and everything in the log file) stay.
"""
from __future__ import annotations

import logging
import warnings

# Warnings that say nothing the user can act on (regular expressions on the message start).
_NOISE = (
    r"Experiment logs directory .* exists and is not empty",   # the Hydra run folder, on purpose
    r"The number of training batches \(\d+\) is smaller than the logging interval",
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",        # Lightning's own torch call
    r".*does not have many workers which may be a bottleneck",  # num_workers=0 is deliberate
    r"The '(train|val|test|predict)_dataloader' does not have many workers",
    r"Trying to infer the `batch_size` from an ambiguous collection",
)


class _DropAdvertisements(logging.Filter):
    """Drops Lightning's product tips (``💡 Tip: ... try installing litlogger``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.lstrip().startswith("💡") or "litlogger" in message
                    or "litmodels" in message)


_FILTER = _DropAdvertisements()


def quiet_libraries(lightning: bool = True) -> None:
    """Idempotent: call at the start of every command, before or after Lightning loads.
    ``lightning=False`` for commands that never train (brainfm-prep): importing Lightning
    only to tidy its handlers would add seconds to their start-up."""
    import importlib.util

    for pattern in _NOISE:
        warnings.filterwarnings("ignore", message=pattern)
    if not lightning:
        return
    if importlib.util.find_spec("lightning") is not None:
        import lightning  # noqa: F401  (its import adds the handler removed below)
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning",
                 "lightning_fabric"):
        logger = logging.getLogger(name)
        if logging.getLogger().handlers:   # Hydra (or the caller) configured the root logger:
            for handler in list(logger.handlers):   # let records reach it once, through root
                if type(handler) is logging.StreamHandler:
                    logger.removeHandler(handler)
            logger.propagate = True
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero",
                 "pytorch_lightning.utilities.rank_zero", "lightning_fabric.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)

"""Learning-rate schedules stepped per optimiser step."""
from __future__ import annotations

import math


def warmup_cosine(step: int, total: int, warmup: int, base_lr: float, min_lr: float) -> float:
    """Linear warm-up to ``base_lr``, then cosine decay to ``min_lr`` at ``total`` steps."""
    if warmup > 0 and step < warmup:
        return base_lr * (step + 1) / warmup
    span = max(total - warmup, 1)
    progress = min(max(step - warmup, 0) / span, 1.0)
    return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + math.cos(math.pi * progress))

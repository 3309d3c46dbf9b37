"""How a pretraining corpus mixes its datasets: an explicit policy, not window counts.

Left to window counts, whichever dataset cuts its recordings into the most windows dominates
(1 s trial epochs of a 4-channel headband outnumbered everything else 3:1). A policy names the
share of batches each dataset gets:

- ``natural``: proportional to its windows (what plain shuffling does);
- ``equal``: the same share for every dataset;
- ``hours``: proportional to its hours of signal (channels x time is not counted: a
  64-channel hour counts as one hour).

``cap`` (0 < cap <= 1) bounds any dataset's share; what it removes goes to the others in
proportion to their shares. Every batch holds windows of one dataset and one shape, so no
channel padding is needed and the mix is exact at the batch level.
"""
from __future__ import annotations

import math

import numpy as np
import torch

POLICIES = ("natural", "equal", "hours")


def mixture_weights(windows: dict[str, int], seconds: dict[str, float],
                    policy: str = "equal", cap: float | None = None) -> dict[str, float]:
    """Share of batches per dataset (summing to 1) under ``policy`` and ``cap``."""
    if policy not in POLICIES:
        raise ValueError(f"mix policy {policy!r}; use one of {POLICIES}")
    names = sorted(windows)
    if not names:
        return {}
    if policy == "natural":
        raw = np.array([windows[n] for n in names], dtype=float)
    elif policy == "hours":
        raw = np.array([seconds[n] for n in names], dtype=float)
    else:
        raw = np.ones(len(names))
    if raw.sum() <= 0:
        raise ValueError(f"no windows to mix in {names}")
    w = raw / raw.sum()
    if cap is not None:
        if not 0 < cap <= 1:
            raise ValueError(f"mix cap {cap} must lie in (0, 1]")
        cap = max(cap, 1.0 / len(names))  # a cap below 1/D cannot be met: equal shares
        for _ in range(len(names)):  # water-filling: at most one pass per dataset
            over = w > cap + 1e-12
            if not over.any():
                break
            excess = (w[over] - cap).sum()
            w[over] = cap
            free = ~over & (w < cap)
            w[free] += excess * w[free] / w[free].sum()
    return dict(zip(names, w.tolist()))


class MixedBatchSampler(torch.utils.data.Sampler):
    """Batches of one dataset and one shape each, datasets drawn with fixed shares.

    Per epoch it yields ``n_batches`` batches (default: as many as the windows fill), each
    dataset's share of them exactly (in a shuffled order). For each batch a bucket of that dataset (windows of one
    length and channel count) in proportion to its windows, then the next ``batch_size``
    windows of that bucket's shuffled stream (reshuffled when exhausted). The order is a
    function of (seed, epoch, rank), so a resumed run draws what an uninterrupted one would;
    under DDP every rank draws its own batches and all ranks yield the same number.
    """

    def __init__(self, dataset_keys, length_keys, channel_keys, weights: dict,
                 names: dict, batch_size: int, n_batches: int | None = None, seed: int = 0,
                 rank: int = 0, world_size: int = 1):
        self.batch_size, self.seed = int(batch_size), int(seed)
        self.rank, self.world_size, self.epoch = int(rank), int(world_size), 0
        dataset_keys = np.asarray(dataset_keys)
        self.codes = [c for c in sorted(names) if weights.get(names[c], 0) > 0
                      and (dataset_keys == c).any()]
        if not self.codes:
            raise ValueError("no dataset with a positive share has windows")
        self.names = {c: names[c] for c in self.codes}
        p = np.array([weights[names[c]] for c in self.codes], dtype=float)
        self.p = p / p.sum()
        self.buckets: dict[int, list[np.ndarray]] = {}
        shape = np.asarray(length_keys).astype(np.int64) * 100_003 + np.asarray(channel_keys)
        for c in self.codes:
            rows = np.flatnonzero(dataset_keys == c)
            self.buckets[c] = [rows[shape[rows] == k] for k in np.unique(shape[rows])]
        total = sum(len(b) for bs in self.buckets.values() for b in bs)
        n = n_batches or math.ceil(total / self.batch_size)
        self.n_batches = max(math.ceil(n / self.world_size), 1)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n_batches

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch, self.rank])
        streams: dict[tuple[int, int], list] = {}
        for i in rng.permutation(self._allocation()):
            code = self.codes[i]
            buckets = self.buckets[code]
            sizes = np.array([len(b) for b in buckets], dtype=float)
            j = int(rng.choice(len(buckets), p=sizes / sizes.sum()))
            yield self._take(streams, (code, j), buckets[j], rng).tolist()

    def _allocation(self) -> np.ndarray:
        """Dataset index of every batch of an epoch: the shares met exactly (largest
        remainders), not drawn at random, so even a short run gets the planned mix."""
        quota = self.p * self.n_batches
        counts = np.floor(quota).astype(int)
        short = self.n_batches - counts.sum()
        counts[np.argsort(-(quota - counts), kind="stable")[:short]] += 1
        return np.repeat(np.arange(len(self.codes)), counts)

    def _take(self, streams, key, rows: np.ndarray, rng) -> np.ndarray:
        """The next ``batch_size`` rows of a bucket's endless shuffled stream."""
        order, pos = streams.get(key, (None, 0))
        out = []
        need = min(self.batch_size, len(rows))
        while need > 0:
            if order is None or pos >= len(order):
                order, pos = rng.permutation(rows), 0
            take = order[pos:pos + need]
            out.append(take)
            pos += len(take)
            need -= len(take)
        streams[key] = (order, pos)
        return np.concatenate(out)

"""Torch-side access to corpus stores: a window dataset, a bucketing sampler, a collate.

Batches follow the contract in DESIGN.md: ``x`` (B, C, N, P) float32, ``sensors`` (B, C, F),
``channel_mask`` (B, C) bool, ``y`` (B,), plus integer ``subject``/``session``/``dataset``
codes. Recordings with different channel sets share a batch by padding channels (mask
False); windows of different lengths never share one (the sampler buckets by length).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from .sensors import N_SENSOR_FEATURES
from .store import CorpusStore


class WindowDataset(torch.utils.data.Dataset):
    """All windows of one or more stores, optionally restricted to some rows.

    ``__getitems__`` fetches a whole batch at once, reading each pack (the windows of one
    shape) with one fancy index instead of one read per window; DataLoader uses it
    automatically.
    """

    def __init__(self, stores, patch_len: int = 200):
        import pandas as pd

        self.stores = [s if isinstance(s, CorpusStore) else CorpusStore(s) for s in stores]
        self.patch_len = int(patch_len)
        frames = []
        for code, store in enumerate(self.stores):
            w = store.windows.copy()
            w["store"] = code
            frames.append(w)
        table = pd.concat(frames, ignore_index=True)
        bad = table["n_samples"] % self.patch_len != 0
        if bad.any():
            lengths = sorted(table.loc[bad, "n_samples"].unique().tolist())
            raise ValueError(f"windows of {lengths} samples are not whole {self.patch_len}-"
                             "sample patches; re-prepare with a window length that is a "
                             "multiple of the patch length")
        # stable integer codes; subjects and sessions are scoped by dataset ("01" of one
        # dataset is not "01" of another)
        for col in ("subject", "session", "dataset"):
            table[col] = table[col].fillna("n/a").astype(str)
        scoped = {"dataset": table["dataset"],
                  "subject": table["dataset"] + "/" + table["subject"],
                  "session": table["dataset"] + "/" + table["subject"] + "/" + table["session"]}
        for col, values in scoped.items():
            table[f"{col}_code"] = values.astype("category").cat.codes.astype(np.int64)
        self._bind(table)

    def _bind(self, table) -> None:
        self.table = table
        self._key = table["key"].to_numpy()
        self._pack = table["pack"].to_numpy()
        self._index = table["pack_index"].to_numpy()
        self._store = table["store"].to_numpy()
        self._label = table["label"].to_numpy(dtype=np.int64)
        self._n_samples = table["n_samples"].to_numpy()
        self._n_channels = table["n_channels"].to_numpy()
        # per-recording sensor table, padded to the widest montage, for batched gathers
        pairs = list(dict.fromkeys(zip(self._store.tolist(), self._key.tolist())))
        code_of = {p: i for i, p in enumerate(pairs)}
        self._rec_code = np.array([code_of[p] for p in zip(self._store.tolist(),
                                                             self._key.tolist())], dtype=np.int64)
        width = max((self.stores[s].sensors(k).shape[0] for s, k in pairs), default=0)
        self._sensor_table = np.zeros((len(pairs), width, N_SENSOR_FEATURES), dtype=np.float32)
        for i, (s, k) in enumerate(pairs):
            sens = self.stores[s].sensors(k)
            self._sensor_table[i, :sens.shape[0]] = sens
        self._codes = {c: table[f"{c}_code"].to_numpy() for c in
                       ("subject", "session", "dataset")}

    def subset(self, rows) -> "WindowDataset":
        """A dataset over some rows of this one (codes stay those of the full table)."""
        out = object.__new__(WindowDataset)
        out.stores, out.patch_len = self.stores, self.patch_len
        out._bind(self.table.iloc[np.asarray(rows, dtype=np.int64)].reset_index(drop=True))
        return out

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, i: int) -> dict:
        item = self.__getitems__([i])[0]
        item["x"] = item["x"].float()
        return item

    def _sorted(self, indices: np.ndarray) -> np.ndarray:
        """Positions that order ``indices`` by (store, pack, row in pack)."""
        return np.lexsort((self._index[indices], self._pack[indices], self._store[indices]))

    def _pack_spans(self, ordered: np.ndarray):
        """(lo, hi, pack array) for each run of ``ordered`` rows (as ``_sorted`` orders them)
        that lies in one pack: all windows of one shape in one store, one fancy index."""
        packs, stores = self._pack[ordered], self._store[ordered]
        bounds = np.flatnonzero((packs[1:] != packs[:-1]) | (stores[1:] != stores[:-1])) + 1
        for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(ordered)]):
            yield lo, hi, self.stores[stores[lo]].array(packs[lo])

    def __getitems__(self, indices) -> list[dict]:
        """Items of a batch; ``x`` stays in the store's dtype (collate makes it float32)."""
        indices = np.asarray(indices)
        order = self._sorted(indices)
        ordered = indices[order]
        out: list[dict | None] = [None] * len(indices)
        for lo, hi, arr in self._pack_spans(ordered):
            rows = ordered[lo:hi]
            k, c, t = len(rows), arr.shape[1], arr.shape[2]
            block = torch.from_numpy(arr[self._index[rows]]).view(
                k, c, t // self.patch_len, self.patch_len)
            for j, (at, r) in enumerate(zip(order[lo:hi], rows)):
                sensors = torch.from_numpy(self._sensor_table[self._rec_code[r], :c])
                out[at] = {"x": block[j], "sensors": sensors, **self._ids(r)}
        return out  # type: ignore[return-value]

    def _ids(self, r: int) -> dict:
        return {"y": int(self._label[r]), "subject": int(self._codes["subject"][r]),
                "session": int(self._codes["session"][r]),
                "dataset": int(self._codes["dataset"][r]), "row": int(r)}

    def load_batch(self, indices) -> dict:
        """A whole collated batch (as :func:`collate_windows` makes it), read directly.

        The fast path of the DataModule: windows are ordered by pack (a batch is a set;
        ``row`` says which window each is), each pack's windows are gathered with one
        ``np.take`` from its memory map into a store-dtype buffer, and a single vectorised
        conversion makes the float32 batch. Sensors and the channel mask are gathered from
        per-recording tables.
        """
        indices = np.asarray(indices)
        indices = indices[self._sorted(indices)]
        n_samples = self._n_samples[indices]
        if n_samples.min() != n_samples.max():
            raise ValueError(f"windows of {sorted(set(n_samples.tolist()))} samples in one "
                             "batch; use BucketBatchSampler")
        n_ch = self._n_channels[indices]
        b, c, t = len(indices), int(n_ch.max()), int(n_samples[0])
        dtype = self.stores[self._store[indices[0]]].array(self._pack[indices[0]]).dtype
        padded = bool(n_ch.min() != c)
        raw = (np.zeros if padded else np.empty)((b, c, t), dtype=dtype)
        for lo, hi, arr in self._pack_spans(indices):
            rows, dest = self._index[indices[lo:hi]], raw[lo:hi, :arr.shape[1]]
            if dest.flags.c_contiguous:
                np.take(arr, rows, axis=0, out=dest)  # straight from the map into the batch
            else:  # narrower montage inside a padded batch
                dest[...] = arr[rows]
        x = torch.empty((b, c, t), dtype=torch.float32)
        x.copy_(torch.from_numpy(raw))
        rec = self._rec_code[indices]
        sensors = torch.from_numpy(self._sensor_table[rec, :c])
        mask = torch.from_numpy(np.arange(c)[None, :] < n_ch[:, None])
        batch = {"x": x.view(b, c, t // self.patch_len, self.patch_len), "sensors": sensors,
                 "channel_mask": mask, "y": torch.from_numpy(self._label[indices])}
        for col in ("subject", "session", "dataset"):
            batch[col] = torch.from_numpy(self._codes[col][indices])
        batch["row"] = torch.from_numpy(indices.astype(np.int64))
        return batch

    def shape_keys(self) -> np.ndarray:
        """Per window: its number of samples (windows of unequal length never mix)."""
        return self._n_samples

    def codes(self, column: str) -> np.ndarray:
        """Per window: the integer code of its ``subject``, ``session`` or ``dataset``."""
        return self._codes[column]

    def channel_keys(self) -> np.ndarray:
        """Per window: its channel count, for bucketing by channel set."""
        return self._n_channels


def collate_windows(items: list[dict]) -> dict:
    """Stack items from ``WindowDataset`` as float32, padding channels to the largest set.

    The generic path (any sampler, any DataLoader); the DataModule uses the faster
    :meth:`WindowDataset.load_batch`, which returns the same batch.
    """
    n_patches = {it["x"].shape[1] for it in items}
    if len(n_patches) != 1:
        raise ValueError(f"windows of {sorted(n_patches)} patches in one batch; use "
                         "BucketBatchSampler so that each batch holds one window length")
    b = len(items)
    c = max(it["x"].shape[0] for it in items)
    n, p = items[0]["x"].shape[1:]
    x = torch.zeros((b, c, n, p), dtype=torch.float32)
    sensors = torch.zeros((b, c, N_SENSOR_FEATURES), dtype=torch.float32)
    mask = torch.zeros((b, c), dtype=torch.bool)
    for i, it in enumerate(items):
        ci = it["x"].shape[0]
        x[i, :ci].copy_(it["x"])
        sensors[i, :ci] = it["sensors"]
        mask[i, :ci] = True
    batch = {"x": x, "sensors": sensors, "channel_mask": mask}
    for key in ("y", "subject", "session", "dataset", "row"):
        batch[key] = torch.tensor([it[key] for it in items], dtype=torch.long)
    return batch


class BatchedWindows(torch.utils.data.Dataset):
    """``WindowDataset`` indexed by lists of windows: ``ds[[i, j, ...]]`` is a whole batch.

    Use with ``DataLoader(BatchedWindows(ds), sampler=BucketBatchSampler(...),
    batch_size=None)``: each worker then builds full batches with :meth:`load_batch`.
    """

    def __init__(self, windows: WindowDataset):
        self.windows = windows

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, indices) -> dict:
        return self.windows.load_batch(indices)


class BucketBatchSampler(torch.utils.data.Sampler):
    """Batches whose windows share a length (and, optionally, a channel count).

    DDP-aware without DistributedSampler: each of ``world_size`` ranks takes every
    ``world_size``-th batch of the same seeded, epoch-dependent order, and the batch count is
    made equal on every rank (a few batches repeat) so that collective ops never hang.
    """

    def __init__(self, length_keys, batch_size: int, channel_keys=None, shuffle: bool = True,
                 drop_last: bool = False, seed: int = 0, rank: int = 0, world_size: int = 1):
        self.length_keys = np.asarray(length_keys)
        self.channel_keys = None if channel_keys is None else np.asarray(channel_keys)
        self.batch_size, self.shuffle, self.drop_last = int(batch_size), shuffle, drop_last
        self.seed, self.rank, self.world_size = seed, int(rank), int(world_size)
        self.epoch = 0
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {rank} outside world_size {world_size}")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _all_batches(self) -> list[np.ndarray]:
        rng = np.random.default_rng(self.seed + self.epoch)
        keys = self.length_keys if self.channel_keys is None else (
            self.length_keys.astype(np.int64) * 100_003 + self.channel_keys)
        batches = []
        for k in np.unique(keys):
            idx = np.flatnonzero(keys == k)
            if self.shuffle:
                idx = rng.permutation(idx)
            for s in range(0, len(idx), self.batch_size):
                chunk = idx[s:s + self.batch_size]
                if len(chunk) < self.batch_size and self.drop_last:
                    continue
                batches.append(chunk)
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def _rank_batches(self) -> list[np.ndarray]:
        batches = self._all_batches()
        if self.world_size == 1 or not batches:
            return batches
        per_rank = math.ceil(len(batches) / self.world_size)
        padded = batches + batches[: per_rank * self.world_size - len(batches)]
        return padded[self.rank::self.world_size]

    def __iter__(self):
        for b in self._rank_batches():
            yield b.tolist()

    def __len__(self) -> int:
        return len(self._rank_batches())


def batch_loader(windows: WindowDataset, batch_size: int, shuffle: bool, seed: int = 0,
                 channel_keys: bool = False, rank: int = 0, world_size: int = 1,
                 num_workers: int = 0, pin_memory: bool = False):
    """The DataLoader brainfm trains with: whole batches from ``load_batch``, bucketed by
    window length (and channel count if ``channel_keys``), each rank reading its share."""
    sampler = BucketBatchSampler(
        windows.shape_keys(), batch_size,
        channel_keys=windows.channel_keys() if channel_keys else None, shuffle=shuffle,
        seed=seed, rank=rank, world_size=world_size)
    return sampled_loader(windows, sampler, num_workers, pin_memory)


def sampled_loader(windows: WindowDataset, sampler, num_workers: int = 0,
                   pin_memory: bool = False):
    """A DataLoader of whole batches: ``sampler`` yields lists of window indices and each
    worker builds the batch with :meth:`WindowDataset.load_batch`."""
    return torch.utils.data.DataLoader(
        BatchedWindows(windows), sampler=sampler, batch_size=None, num_workers=num_workers,
        pin_memory=pin_memory, persistent_workers=num_workers > 0)


def resolve_stores(names_or_paths, store_root) -> list[Path]:
    """Store folders from dataset names (under ``store_root``) or explicit paths."""
    out = []
    for item in names_or_paths:
        p = Path(item)
        out.append(p if p.is_absolute() or p.exists() else Path(store_root) / str(item))
    return out

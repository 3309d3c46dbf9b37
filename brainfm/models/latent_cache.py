"""A float16 cache of the diffusion backbone's latents, one file per (checkpoint, dataset).

The latents of a frozen backbone do not change between fine-tuning epochs, so recomputing
them every epoch (20 forward passes per window) is waste. This computes them once per
dataset, (windows, channels, layers, patches, width) in float16, and reuses them while the
checkpoint's weights and the dataset are the same:

- the key is a hash of every weight of the backbone (names, shapes, bytes), the latent
  settings (step t, patch length, input transform) and a caller's description of the data
  (dataset name, a fingerprint of its windows): other weights or other data give another
  file;
- before writing, the size is printed and checked against the free disk space (a cache that
  cannot fit is refused with the numbers, not left half-written);
- the array is written into a temporary file beside the target and renamed over it when
  complete, and the key file is written last, so an interrupted run leaves no file that a
  later run would take for a finished cache.

:func:`cached_latent_windows` is how brainfm-bench uses it: a fine-tuning fold's windows
become windows whose batches carry the cached latents, which a ``LatentClassifier`` then
reads instead of calling its backbone.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch

from ..data.store import _tmp_path, atomic_write_json

HEADROOM = 1.1  # free space needed: the estimate plus 10 %


def checkpoint_hash(model: torch.nn.Module) -> str:
    """sha256 over the state dict's names, dtypes, shapes and bytes (first 16 hex digits)."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


def windows_fingerprint(windows) -> str:
    """Which windows, in which order: the stores (folder and preparation hash) and every row's
    place in them (store, pack, row in pack). Caches of per-window arrays key on it."""
    stores = "|".join(f"{s.root.resolve()}:{s.meta.get('config_hash')}" for s in windows.stores)
    t = windows.table
    places = np.stack([t[c].to_numpy(np.int64) for c in ("store", "pack_index")], axis=1)
    h = hashlib.sha1(places.tobytes() + "|".join(map(str, t["pack"])).encode())
    return f"{hashlib.sha1(stores.encode()).hexdigest()[:12]}-{h.hexdigest()[:8]}"


@torch.no_grad()
def backbone_latents(backbone, x, sensors=None, channel_mask=None, *, t: int = 1,
                     input_transform: Callable | None = None) -> torch.Tensor:
    """The frozen backbone's latents (B, C, layers, patches, width) of signals in the store's
    units: the one computation behind the cache and ``LatentClassifier``. No graph: the
    backbone is never trained through its latents."""
    if input_transform is not None:
        x = input_transform(x)
    return backbone.latents(x, sensors, channel_mask, t=t)


def latent_shape(model, n_windows: int, n_channels: int, n_samples: int) -> tuple[int, ...]:
    """(windows, channels, layers, patches, width) of a dataset's latents."""
    return (n_windows, n_channels, len(model.blocks), n_samples // model.patch_len,
            model.d_model)


def estimate_bytes(shape: tuple[int, ...]) -> int:
    """float16: two bytes per value."""
    return 2 * int(np.prod(shape))


class LatentCache:
    """Latents per (checkpoint hash, dataset) under ``root``."""

    def __init__(self, root, log: Callable[[str], None] = print):
        self.root = Path(root)
        self.log = log

    def key(self, model, dataset: str, data_fingerprint: str, t: int = 1,
            input_transform: Callable | None = None) -> dict:
        transform = None if input_transform is None else (
            f"{getattr(input_transform, '__module__', '')}."
            f"{getattr(input_transform, '__qualname__', repr(input_transform))}")
        return {"checkpoint": checkpoint_hash(model), "dataset": dataset,
                "data": data_fingerprint, "t": int(t), "patch_len": int(model.patch_len),
                "input_transform": transform,
                "format": "float16 (windows, channels, layers, patches, width)"}

    def _paths(self, key: dict) -> tuple[Path, Path]:
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        stem = self.root / f"{key['dataset']}-{key['checkpoint']}-{digest}"
        return stem.with_suffix(".npy"), stem.with_suffix(".json")

    def lookup(self, key: dict) -> np.ndarray | None:
        """The cached array (a read-only memory map) for ``key``, or None."""
        array, meta = self._paths(key)
        if not (array.exists() and meta.exists()):
            return None
        if json.loads(meta.read_text()).get("key") != key:
            return None
        return np.load(array, mmap_mode="r")

    def get_or_build(self, model, batches: Callable[[], Iterable[dict]], *, dataset: str,
                     data_fingerprint: str, n_windows: int, n_channels: int, n_samples: int,
                     t: int = 1, input_transform: Callable | None = None) -> np.ndarray:
        """The latents of every window of a dataset, from the cache or computed once.

        ``batches()`` yields dicts with ``x`` (B, C, T) or (B, C, N, P), ``sensors``
        (B, C, 8), ``channel_mask`` (B, C) and optionally ``row`` (B,), the windows' places
        in the array (default: one after the other), ``n_windows`` in all, with at most
        ``n_channels`` channels. ``input_transform`` maps signals into the model's space
        (the staged mu-law for a diffusion backbone). The latents are computed on the
        model's device.
        """
        key = self.key(model, dataset, data_fingerprint, t, input_transform)
        cached = self.lookup(key)
        if cached is not None:
            self.log(f"latent cache: reusing {self._paths(key)[0]} ({cached.shape})")
            return cached
        shape = latent_shape(model, n_windows, n_channels, n_samples)
        need = estimate_bytes(shape)
        self.root.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(self.root).free
        self.log(f"latent cache: {dataset} -> {shape} float16 = {need / 2**20:.1f} MiB "
                 f"({free / 2**30:.1f} GiB free in {self.root})")
        if need * HEADROOM > free:
            raise OSError(f"latent cache for {dataset} needs {need / 2**20:.1f} MiB (+10 %) but "
                          f"{self.root} has {free / 2**20:.1f} MiB free: free space or point "
                          "the cache at another disk")
        array_path, meta_path = self._paths(key)
        tmp = _tmp_path(array_path)
        try:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16, shape=shape)
            done = self._fill(out, model, batches, t, input_transform)
            if done != n_windows:
                raise ValueError(f"latent cache for {dataset}: the batches gave {done} windows, "
                                 f"expected n_windows={n_windows}")
            out.flush()
            del out
            os.replace(tmp, array_path)
        finally:
            tmp.unlink(missing_ok=True)
        atomic_write_json(meta_path, {"key": key, "shape": list(shape)})
        return np.load(array_path, mmap_mode="r")

    @staticmethod
    def _fill(out: np.memmap, model, batches, t, input_transform) -> int:
        """Writes every batch's latents into ``out`` (eval mode, then the model's previous
        mode again); returns the number of windows written."""
        was_training = model.training
        device = next(model.parameters()).device
        model.eval()
        done = 0
        try:
            for batch in batches():
                inputs = [None if batch.get(k) is None else batch[k].to(device)
                          for k in ("x", "sensors", "channel_mask")]
                lat = backbone_latents(model, *inputs, t=t, input_transform=input_transform)
                b, c = lat.shape[:2]
                rows = (np.arange(done, done + b) if batch.get("row") is None
                        else np.asarray(batch["row"]))
                if b and (rows.max() >= out.shape[0] or rows.min() < 0 or c > out.shape[1]):
                    raise ValueError(f"latent cache: a batch of {b} windows x {c} channels "
                                     f"(rows {rows.min()}-{rows.max()}) does not fit the "
                                     f"declared {out.shape[0]} windows x {out.shape[1]} "
                                     "channels")
                out[rows, :c] = lat.to(torch.float16).cpu().numpy()
                done += b
        finally:
            model.train(was_training)
        return done


class CachedLatentWindows:
    """A window dataset whose batches carry the cached latents (float32, (B, C, layers,
    patches, width)) as ``x``, beside the usual ``channel_mask``, ``y`` and ``row``.

    It stands in for a ``WindowDataset`` wherever brainfm's loaders take one
    (:func:`brainfm.data.loading.batch_loader`): same rows, same batches, same order; only
    ``x`` is read from the cache instead of the signal.
    """

    def __init__(self, windows, latents: np.ndarray, rows: np.ndarray | None = None):
        self.windows, self.latents = windows, latents
        self.rows = np.arange(len(windows)) if rows is None else np.asarray(rows)

    @property
    def table(self):
        return self.windows.table

    @property
    def stores(self):
        return self.windows.stores

    def __len__(self) -> int:
        return len(self.windows)

    def subset(self, rows) -> "CachedLatentWindows":
        rows = np.asarray(rows, dtype=np.int64)
        return CachedLatentWindows(self.windows.subset(rows), self.latents, self.rows[rows])

    def shape_keys(self) -> np.ndarray:
        return self.windows.shape_keys()

    def channel_keys(self) -> np.ndarray:
        return self.windows.channel_keys()

    def load_batch(self, indices) -> dict:
        batch = self.windows.load_batch(indices)
        c = batch["channel_mask"].shape[1]
        rows = self.rows[batch["row"].numpy()]
        batch["x"] = torch.from_numpy(self.latents[rows, :c].astype(np.float32))
        return batch


def cached_latent_windows(classifier, windows, cache: LatentCache, batch_size: int = 64,
                          device: str | torch.device | None = None):
    """``windows`` as a ``LatentClassifier`` trains on them fastest: when every window has
    one length, its (frozen) backbone's latents of all windows are read from ``cache``
    (computed once per weights and windows) and ``classifier`` is switched to read them from
    the batches (returns :class:`CachedLatentWindows`). Otherwise ``windows`` unchanged,
    and the classifier calls its backbone on every batch as before.

    ``device``: where the latents are computed (default: CUDA when available).
    """
    backbone = classifier.backbone
    lengths = np.unique(windows.shape_keys())
    if len(lengths) != 1:
        cache.log(f"latent cache: not used, windows of {lengths.tolist()} samples do not "
                  "share one array; the backbone runs every epoch")
        return windows
    n = len(windows)

    def batches():
        for start in range(0, n, batch_size):
            yield windows.load_batch(np.arange(start, min(n, start + batch_size)))

    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    before = next(backbone.parameters()).device
    backbone.to(device)
    try:
        latents = cache.get_or_build(
            backbone, batches, dataset="+".join(s.root.name for s in windows.stores),
            data_fingerprint=windows_fingerprint(windows), n_windows=n,
            n_channels=int(windows.channel_keys().max()), n_samples=int(lengths[0]),
            t=classifier.t, input_transform=classifier.input_transform)
    finally:
        backbone.to(before)
    classifier.reads_latents = True
    return CachedLatentWindows(windows, latents)


__all__ = ["CachedLatentWindows", "LatentCache", "backbone_latents", "cached_latent_windows",
           "checkpoint_hash", "estimate_bytes", "latent_shape", "windows_fingerprint"]

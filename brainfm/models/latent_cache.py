"""A float16 cache of the diffusion backbone's latents, one file per (checkpoint, dataset).

The latents of a frozen backbone do not change between fine-tuning epochs, yet the heads
recomputed them every epoch (20 forward passes per window). This computes them once per
dataset, (windows, channels, layers, patches, width) in float16, and reuses them while the
checkpoint's weights and the dataset are the same:

- the key is a hash of every weight of the backbone (names, shapes, bytes), the latent
  settings (step t, patch length) and a caller's description of the data (dataset name,
  store fingerprint, window count): other weights or other data give another file;
- before writing, the size is printed and checked against the free disk space (a cache that
  cannot fit is refused with the numbers, not left half-written);
- the array is written into a temporary file beside the target and renamed over it when
  complete, and the key file is written last, so an interrupted run leaves no file that a
  later run would take for a finished cache.
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

    def key(self, model, dataset: str, data_fingerprint: str, t: int = 1) -> dict:
        return {"checkpoint": checkpoint_hash(model), "dataset": dataset,
                "data": data_fingerprint, "t": int(t), "patch_len": int(model.patch_len),
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

        ``batches()`` yields dicts with ``x`` (B, C, T), ``sensors`` (B, C, 8) and
        ``channel_mask`` (B, C) for every window in a fixed order, ``n_windows`` in all,
        padded to ``n_channels``. ``input_transform`` maps signals into the model's space
        (the staged mu-law for a diffusion backbone).
        """
        key = self.key(model, dataset, data_fingerprint, t)
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
        model.eval()
        i = 0
        with torch.no_grad():
            for batch in batches():
                x = batch["x"]
                if input_transform is not None:
                    x = input_transform(x)
                lat = model.latents(x, batch.get("sensors"), batch.get("channel_mask"), t=t)
                b, c = lat.shape[:2]
                if i + b > out.shape[0] or c > out.shape[1]:
                    raise ValueError(f"latent cache: batch of {b} x {c} channels does not fit "
                                     f"the declared {out.shape[0]} windows x {out.shape[1]} "
                                     "channels")
                out[i:i + b, :c] = lat.to(torch.float16).numpy()
                i += b
        return i


__all__ = ["LatentCache", "checkpoint_hash", "estimate_bytes", "latent_shape"]

"""Linear probing: a frozen backbone's pooled features, computed once, read by a linear model.

Freezing is real (every parameter's ``requires_grad`` off, eval mode), features of a dataset
are computed once per (model weights, store, pooling) and cached on disk, and each fold fits
only a scaler and a logistic regression on its training rows.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ..data.store import atomic_save_array
from ..models.heads import masked_mean
from ..models.latent_cache import checkpoint_hash, windows_fingerprint


def freeze(model: torch.nn.Module) -> torch.nn.Module:
    """No gradients, no dropout, no running statistics updates: the backbone cannot change."""
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval()


@torch.no_grad()
def extract_features(model, windows, token_features=None, batch_size: int = 64) -> np.ndarray:
    """(n_windows, D) float32 (or (n_windows, ..., D) for token features with more axes):
    per window, the mean of the backbone's per-token features over its real channels and all
    its patches. ``windows`` is a WindowDataset;
    ``token_features(model, x, sensors, channel_mask) -> (B, C, N, D)`` comes from the
    family's adapter (default: ``model.forward_features``)."""
    if token_features is None:
        token_features = lambda m, *inputs: m.forward_features(*inputs)  # noqa: E731
    freeze(model)
    lengths = windows.shape_keys()
    out = None
    for length in np.unique(lengths):
        rows = np.flatnonzero(lengths == length)
        for start in range(0, len(rows), batch_size):
            idx = rows[start:start + batch_size]
            batch = windows.load_batch(idx)
            feats = token_features(model, batch["x"], batch["sensors"],
                                   batch["channel_mask"])
            pooled = masked_mean(feats, batch["channel_mask"]).float().numpy()
            if out is None:
                out = np.empty((len(windows), *pooled.shape[1:]), dtype=np.float32)
            out[batch["row"].numpy()] = pooled
    return out


@torch.no_grad()
def extract_tokens(model, windows, token_features=None, batch_size: int = 64) -> np.ndarray:
    """(n_windows, C, N, D) float16: every token of every window, padded channels NaN, for
    probes that weigh tokens (the attention-pooling probe). All windows must share a length."""
    if token_features is None:
        token_features = lambda m, *inputs: m.forward_features(*inputs)  # noqa: E731
    lengths = np.unique(windows.shape_keys())
    if len(lengths) > 1:
        raise ValueError(f"token read-outs need windows of one length, these have "
                         f"{lengths.tolist()} samples -> use readout=last or best_layer")
    freeze(model)
    out = None
    for start in range(0, len(windows), batch_size):
        batch = windows.load_batch(np.arange(start, min(start + batch_size, len(windows))))
        feats = token_features(model, batch["x"], batch["sensors"], batch["channel_mask"])
        feats = feats.float().masked_fill(~batch["channel_mask"][:, :, None, None], float("nan"))
        if out is None:
            c = int(windows.channel_keys().max())
            out = np.full((len(windows), c, *feats.shape[2:]), np.nan, dtype=np.float16)
        out[batch["row"].numpy(), :feats.shape[1]] = feats.numpy().astype(np.float16)
    return out


class FeatureCache:
    """Features on disk, keyed by model fingerprint and store identity; atomic writes."""

    def __init__(self, root):
        self.root = Path(root)

    def key(self, model, windows) -> str:
        return f"{checkpoint_hash(model)}-{windows_fingerprint(windows)}"

    def features(self, model, windows, token_features=None, batch_size: int = 64,
                 readout: str = "mean", extract=None) -> tuple[np.ndarray, bool]:
        """(features, computed_now): reads the cache when it can, else computes and stores.
        ``readout`` names what is cached (pooled last layer ``mean``, ``layers``, ``tokens``)
        and ``extract`` computes it (default :func:`extract_features`)."""
        tag = "" if readout == "mean" else f"-{readout}"
        path = self.root / f"{self.key(model, windows)}{tag}.npy"
        if path.exists():
            return np.load(path, allow_pickle=False), False
        feats = (extract or extract_features)(model, windows, token_features, batch_size)
        atomic_save_array(path, feats)
        return feats, True


def linear_probe(seed: int = 0):
    """Scaler + balanced logistic regression, both fitted on a fold's training rows only."""
    return make_pipeline(StandardScaler(),
                         LogisticRegression(max_iter=2000, class_weight="balanced",
                                            random_state=seed))

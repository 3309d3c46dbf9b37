"""brainfm-bench fine-tunes the diffusion heads on cached latents: the same logits and loss
as the backbone gives (to float16 rounding), the backbone run once per window however many
epochs and folds, and a new cache file for a changed checkpoint.

On a quarter of the eegmat sample that ships in the package (4 subjects, 24 windows of 19
channels x 5 s; the session's ``sample_store_root``), with an ``eegdm_tiny``-sized backbone.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from brainfm.bench.pipelines import make_pipeline
from brainfm.bench.protocols import make_protocol
from brainfm.checkpoint import save_model
from brainfm.data.loading import WindowDataset
from brainfm.bench.adapters import get_adapter
from brainfm.models.diffusion_denoiser import DiffusionDenoiser
from brainfm.models.latent_cache import CachedLatentWindows, LatentCache, cached_latent_windows


pytestmark = [pytest.mark.slow]

TINY = dict(d_model=16, d_state=16, n_layers=2, d_cond=32, d_time_embed=16)  # eegdm_tiny


@pytest.fixture(scope="module")
def windows(sample_store_root):
    full = WindowDataset([sample_store_root / "eegmat_sample"])
    return full.subset(np.arange(0, len(full), 4))   # 24 windows, both classes of 4 subjects


def _classifier(head: str, seed: int = 0):
    torch.manual_seed(seed)
    adapter = get_adapter("diffusion")
    backbone = adapter.load({"model": {**TINY, "family": "diffusion"}})
    return adapter.classifier(backbone, head, n_classes=2, n_chans=19, n_patches=5)


class _CountWindows:
    """Counts the windows DiffusionDenoiser.latents is called on."""

    def __init__(self, monkeypatch):
        self.windows = 0
        original = DiffusionDenoiser.latents

        def counted(model, x, *args, **kwargs):
            self.windows += x.shape[0]
            return original(model, x, *args, **kwargs)
        monkeypatch.setattr(DiffusionDenoiser, "latents", counted)


@pytest.mark.parametrize("head", ["fusion", "pooled"])
def test_cached_latents_give_the_backbones_logits_and_loss(windows, tmp_path, head):
    clf = _classifier(head).eval()
    rows = np.arange(0, len(windows), 2)
    direct = windows.load_batch(rows)
    with torch.no_grad():
        logits = clf(direct["x"], direct["sensors"], direct["channel_mask"])
    cached = cached_latent_windows(clf, windows, LatentCache(tmp_path, log=lambda s: None))
    assert isinstance(cached, CachedLatentWindows) and clf.reads_latents
    batch = cached.load_batch(rows)
    assert torch.equal(batch["row"], direct["row"]) and torch.equal(batch["y"], direct["y"])
    with torch.no_grad():
        from_cache = clf(batch["x"], batch["sensors"], batch["channel_mask"])
    torch.testing.assert_close(from_cache, logits, rtol=2e-3, atol=2e-3)  # float16 latents
    loss, cached_loss = (F.cross_entropy(out, direct["y"]) for out in (logits, from_cache))
    assert abs(float(cached_loss) - float(loss)) < 1e-3
    # a subset reads the same rows of the cache (the folds' train/val/test subsets)
    part = cached.subset(rows)
    sub = part.load_batch(np.arange(len(rows)))
    torch.testing.assert_close(sub["x"], batch["x"])
    with pytest.raises(ValueError, match="cached latents"):   # signals where latents belong
        clf(direct["x"], direct["sensors"], direct["channel_mask"])


def test_the_backbone_runs_once_per_window_over_epochs_and_folds(windows, tmp_path,
                                                                 monkeypatch):
    calls = _CountWindows(monkeypatch)
    spec = {"kind": "finetune", "epochs": 2, "batch_size": 8, "head_lr": 1e-3,
            "backbone": {"family": "diffusion", "head": "pooled",
                         "model": {**TINY, "family": "diffusion"}}}
    folds = list(make_protocol("loso").split(windows.table))[:2]
    cached = make_pipeline(spec, tmp_path / "cache")
    first = cached.run_fold(windows, folds[0], seed=0)
    assert calls.windows == len(windows)                     # every window once, 2 epochs
    cached.run_fold(windows, folds[1], seed=0)
    assert calls.windows == len(windows)                     # the next fold reads the file
    assert len(list((tmp_path / "cache" / "latents").glob("*.npy"))) == 1
    # the old path: every epoch recomputes the training and validation windows
    calls.windows = 0
    uncached = make_pipeline(spec, None).run_fold(windows, folds[0], seed=0)
    fold = folds[0]
    assert calls.windows == 2 * (len(fold.train) + len(fold.val)) + len(fold.test)
    # the same training run, to float16 rounding of the latents (measured: 1e-5)
    np.testing.assert_array_equal(first.rows, uncached.rows)
    np.testing.assert_allclose(first.y_score, uncached.y_score, atol=1e-3)
    assert first.info["selected_epoch"] == uncached.info["selected_epoch"]


def test_a_changed_checkpoint_gets_a_new_cache_file(windows, tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = DiffusionDenoiser(**TINY)
    checkpoint = save_model(model, tmp_path / "model.pt")
    spec = {"kind": "finetune", "epochs": 1, "batch_size": 8,
            "backbone": {"family": "diffusion", "head": "pooled",
                         "checkpoint": str(checkpoint)}}
    fold = next(iter(make_protocol("loso").split(windows.table)))
    pipeline = make_pipeline(spec, tmp_path / "cache")
    pipeline.run_fold(windows, fold, seed=0)
    files = set((tmp_path / "cache" / "latents").glob("*.npy"))
    with torch.no_grad():
        model.blocks[0].expand.weight.mul_(1.5)
    save_model(model, checkpoint)
    calls = _CountWindows(monkeypatch)
    pipeline.run_fold(windows, fold, seed=0)
    new = set((tmp_path / "cache" / "latents").glob("*.npy")) - files
    assert len(files) == 1 and len(new) == 1 and calls.windows == len(windows)
    assert not np.array_equal(np.load(new.pop()), np.load(files.pop()))

"""The float16 latent cache: computed once, reused for the same weights and data, recomputed
for other weights, refused when the disk cannot hold it, never left half-written."""
from __future__ import annotations

import collections

import numpy as np
import pytest
import torch

from brainfm.models import latent_cache
from brainfm.models.latent_cache import LatentCache, checkpoint_hash, estimate_bytes


def _data(n=5, c=3, samples=100):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, c, samples, generator=g) * 0.3
    sensors = torch.rand(n, c, 8, generator=g)
    sensors[..., 6], sensors[..., 7] = 1.0, 1.0
    mask = torch.ones(n, c, dtype=torch.bool)
    mask[-1, -1] = False
    calls = collections.Counter()

    def batches():
        calls["passes"] += 1
        for i in range(0, n, 2):
            yield {"x": x[i:i + 2], "sensors": sensors[i:i + 2], "channel_mask": mask[i:i + 2]}
    return x, sensors, mask, batches, calls


def _get(cache, model, batches, **kw):
    args = dict(dataset="toy", data_fingerprint="v1", n_windows=5, n_channels=3,
                n_samples=100)
    return cache.get_or_build(model, batches, **{**args, **kw})


def test_built_once_then_reused_and_equal_to_the_model(tmp_path, small_model):
    torch.manual_seed(0)
    model = small_model("diffusion", patch_len=50).train()
    x, sensors, mask, batches, calls = _data()
    logs = []
    cache = LatentCache(tmp_path, log=logs.append)
    first = _get(cache, model, batches)
    assert model.training                  # built in eval mode, the caller's mode restored
    model.eval()
    assert first.dtype == np.float16 and first.shape == (5, 3, 2, 2, 8)
    assert "MiB" in logs[0] and "free" in logs[0]          # the size estimate, before writing
    expected = model.latents(x, sensors, mask).numpy()
    np.testing.assert_allclose(first, expected, rtol=2e-3, atol=1e-4)   # float16 rounding
    again = _get(LatentCache(tmp_path, log=logs.append), model, batches)
    assert calls["passes"] == 1 and "reusing" in logs[-1]
    np.testing.assert_array_equal(again, first)
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".json", ".npy"]  # no temporaries


def test_batches_in_any_order_land_in_their_rows(tmp_path, small_model):
    """Batches may say where their windows go (``row``), as brainfm's loader orders them."""
    torch.manual_seed(0)
    model = small_model("diffusion", patch_len=50).eval()
    x, sensors, mask, batches, _ = _data()
    order = [4, 2, 0, 3, 1]

    def shuffled():
        for i in (0, 2, 4):
            rows = order[i:i + 2]
            yield {"x": x[rows], "sensors": sensors[rows], "channel_mask": mask[rows],
                   "row": torch.tensor(rows)}
    in_order = np.array(_get(LatentCache(tmp_path / "a", log=lambda s: None), model, batches))
    rowed = _get(LatentCache(tmp_path / "b", log=lambda s: None), model, shuffled)
    np.testing.assert_array_equal(rowed, in_order)


def test_other_weights_or_data_get_their_own_file(tmp_path, small_model):
    torch.manual_seed(0)
    model = small_model("diffusion", patch_len=50)
    *_, batches, calls = _data()
    cache = LatentCache(tmp_path, log=lambda s: None)
    a = np.array(_get(cache, model, batches))
    h = checkpoint_hash(model)
    with torch.no_grad():
        model.blocks[0].expand.weight.add_(0.5 * torch.randn_like(model.blocks[0].expand.weight))
    assert checkpoint_hash(model) != h
    b = np.array(_get(cache, model, batches))
    assert calls["passes"] == 2 and not np.array_equal(a, b)
    _get(cache, model, batches, data_fingerprint="v2")
    assert calls["passes"] == 3 and len(list(tmp_path.glob("*.npy"))) == 3


def test_refused_when_the_disk_is_too_small(tmp_path, monkeypatch, small_model):
    torch.manual_seed(0)
    model = small_model("diffusion", patch_len=50)
    *_, batches, calls = _data()
    need = estimate_bytes((5, 3, 2, 2, 8))
    assert need == 2 * 5 * 3 * 2 * 2 * 8
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(latent_cache.shutil, "disk_usage",
                        lambda p: usage(10 * need, 9 * need, need))   # < estimate + 10 %
    with pytest.raises(OSError, match="MiB free"):
        _get(LatentCache(tmp_path, log=lambda s: None), model, batches)
    assert calls["passes"] == 0 and not list(tmp_path.iterdir())


def test_an_interrupted_build_leaves_nothing_to_reuse(tmp_path, small_model):
    torch.manual_seed(0)
    model = small_model("diffusion", patch_len=50)
    *_, batches, _ = _data()

    def failing():
        for i, batch in enumerate(batches()):
            if i == 1:
                raise KeyboardInterrupt
            yield batch
    cache = LatentCache(tmp_path, log=lambda s: None)
    with pytest.raises(KeyboardInterrupt):
        _get(cache, model, failing)
    assert not list(tmp_path.iterdir())
    with pytest.raises(ValueError, match="gave 4 windows"):  # a short dataset is refused too
        _get(cache, model, lambda: (b for i, b in enumerate(batches()) if i < 2))
    assert not list(tmp_path.iterdir())

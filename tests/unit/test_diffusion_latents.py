"""Latents of the diffusion backbone and the heads that read them, through the bench adapter."""
from __future__ import annotations

import pytest
import torch

from brainfm.bench.adapters import get_adapter
from brainfm.models.latent_fusion import LatentFusionHead, pool_latents

TINY = dict(d_model=8, d_state=8, n_layers=3, d_cond=16, d_time_embed=8, patch_len=50)


def _inputs(b, c, n, patch=50, seed=0):
    g = torch.Generator().manual_seed(seed)
    sensors = torch.rand(b, c, 8, generator=g)
    sensors[..., 6], sensors[..., 7] = 1.0, 1.0
    return torch.randn(b, c, n * patch, generator=g) * 0.3, sensors


@pytest.mark.parametrize("c", [1, 4, 19])
def test_latent_shapes_for_any_montage(c, small_model):
    torch.manual_seed(0)
    model = small_model("diffusion", n_layers=3, patch_len=50).eval()
    x, sensors = _inputs(2, c, 3)
    mask = torch.ones(2, c, dtype=torch.bool)
    if c > 1:
        mask[1, c // 2:] = False        # the second window is padded
    lat = model.latents(x, sensors, mask)
    assert lat.shape == (2, c, 3, 3, 8)
    if c > 1:
        assert lat[~mask].abs().max() == 0
    assert (lat[mask] > 0).all()        # a spread of sigmoid gates: positive
    # by definition: unbiased std over each 50-sample patch of every block's gates
    valid = mask.nonzero()[0]
    _, gates = model.denoise(x[valid[0], valid[1]][None], torch.tensor([1]),
                             sensors[valid[0], valid[1]][None], return_gates=True)
    manual = torch.stack([g[0].reshape(3, 50, 8).std(dim=1) for g in gates])
    torch.testing.assert_close(lat[valid[0], valid[1]], manual, atol=1e-5, rtol=1e-5)


def test_latents_need_whole_patches(small_model):
    model = small_model("diffusion", n_layers=3, patch_len=50)
    with pytest.raises(ValueError, match="120 samples"):
        model.latents(torch.zeros(1, 1, 120), torch.zeros(1, 1, 8))


def test_fusion_head_ignores_patch_count_and_channel_order():
    torch.manual_seed(0)
    head = LatentFusionHead(n_layers=3, width=8, n_outputs=4).eval()
    lat = torch.rand(2, 5, 3, 6, 8)
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    out = head(lat, mask)
    assert out.shape == (2, 4)
    assert head(lat[:, :, :, :2], mask).shape == (2, 4)           # any number of patches
    perm = torch.tensor([4, 2, 0, 1, 3])
    perm_mask = mask.clone()
    perm_mask[0] = mask[0, perm]
    lat_p = lat.clone()
    lat_p[0] = lat[0, perm]
    torch.testing.assert_close(head(lat_p, perm_mask)[0], out[0], atol=1e-5, rtol=1e-5)
    junk = lat.clone()
    junk[1, 3:] = 100.0                                            # padded channels ignored
    torch.testing.assert_close(head(junk, mask)[1], out[1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(pool_latents(junk, mask)[1], pool_latents(lat, mask)[1])


@pytest.mark.parametrize("head", ["fusion", "pooled"])
def test_adapter_trains_the_head_on_a_frozen_backbone(head):
    torch.manual_seed(0)
    adapter = get_adapter("diffusion")
    model = adapter.load({"model": {**TINY, "family": "diffusion"}})
    clf = adapter.classifier(model, head, n_classes=3, n_chans=4, n_patches=2)
    x, sensors = _inputs(4, 4, 2)
    mask = torch.ones(4, 4, dtype=torch.bool)
    before = {k: v.clone() for k, v in clf.backbone.state_dict().items()}
    opt = torch.optim.SGD([p for p in clf.parameters() if p.requires_grad], lr=0.1)
    clf.train()
    loss = torch.nn.functional.cross_entropy(clf(x, sensors, mask), torch.tensor([0, 1, 2, 0]))
    loss.backward()
    opt.step()
    assert all(torch.equal(v, clf.backbone.state_dict()[k]) for k, v in before.items())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in clf.head.parameters())
    feats = adapter.features(model, x, sensors, mask)
    assert feats.shape == (4, 4, 2, 3 * 8)
    with pytest.raises(ValueError, match="no head 'flatten'"):
        adapter.classifier(model, "flatten", 3, 4, 2)

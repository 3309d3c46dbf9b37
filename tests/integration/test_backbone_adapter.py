"""A backbone family from outside brainfm joins the benchmark through config + one adapter.

``PatchConvAdapter`` below is the whole integration of a new family (a per-channel 1-D conv
over each patch, standing in for a user's model): the fine-tuning, from-scratch and probe
pipelines run it on real eegmat folds, named only by ``backbone.family`` in a spec.
"""
import numpy as np
import pytest
import torch
from torch import nn

from brainfm.bench.pipelines import make_pipeline
from brainfm.bench.protocols import make_protocol
from brainfm.data.loading import WindowDataset
from brainfm.bench.adapters import BackboneAdapter
from brainfm.models.heads import ClassificationHead

pytestmark = [pytest.mark.real_data, pytest.mark.slow]

FAMILY = f"{__name__}:PatchConvAdapter"


class PatchConv(nn.Module):
    """(B, C, N, P) patches -> (B, C, N, D) features, the same conv for every channel."""

    def __init__(self, width: int = 16, patch_len: int = 200):
        super().__init__()
        self.patch_len = patch_len
        self.conv = nn.Sequential(nn.Conv1d(1, width, 25, stride=5), nn.GELU(),
                                  nn.AdaptiveAvgPool1d(1))

    def forward(self, x, sensors=None, channel_mask=None):
        b, c, n, p = x.shape
        return self.conv(x.reshape(b * c * n, 1, p)).reshape(b, c, n, -1)


class PatchConvClassifier(nn.Module):
    def __init__(self, backbone: PatchConv, n_classes: int):
        super().__init__()
        self.backbone = backbone
        self.layers = [backbone.conv]
        self.head = ClassificationHead(backbone.conv[0].out_channels, n_classes)

    def forward(self, x, sensors=None, channel_mask=None):
        x = x.reshape(x.shape[0], x.shape[1], -1, self.backbone.patch_len)
        return self.head(self.backbone(x), channel_mask)


class PatchConvAdapter(BackboneAdapter):
    family, heads = "patch_conv", ("pooled",)

    def load(self, spec, pretrained=True):
        return PatchConv(**spec.get("model", {}))

    def classifier(self, model, head, n_classes, n_chans, n_patches):
        self.check_head(head)
        return PatchConvClassifier(model, n_classes)

    def features(self, model, x, sensors, channel_mask):
        return model(x, sensors, channel_mask)


@pytest.mark.parametrize("kind", ["scratch", "probe"])
def test_a_new_family_runs_in_the_benchmark_from_its_spec(prepared_stores, tmp_path, kind):
    windows = WindowDataset([prepared_stores[0] / "eegmat"])
    split = next(iter(make_protocol("loso").split(windows.table)))
    spec = {"kind": kind, "backbone": {"family": FAMILY, "model": {"width": 8}}}
    if kind == "scratch":
        spec.update(epochs=1, patience=1)
    pred = make_pipeline(spec, tmp_path).run_fold(windows, split, seed=0)
    assert np.array_equal(np.sort(pred.rows), np.sort(split.test))
    assert pred.y_score.shape == (len(split.test), 2)
    assert np.allclose(pred.y_score.sum(1), 1.0, atol=1e-5)

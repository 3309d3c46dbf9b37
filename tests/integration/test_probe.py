"""Linear probing on real stores: the backbone stays frozen, features are computed once."""
import numpy as np
import pytest
import torch

from brainfm.bench.metrics import classification_metrics
from brainfm.bench.probe import FeatureCache, extract_features, freeze, linear_probe
from brainfm.bench.protocols import LeaveOneSubjectOut
from brainfm.data.loading import WindowDataset
from brainfm.models import CrissCrossTransformer

pytestmark = pytest.mark.real_data


@pytest.fixture(scope="module")
def eegmat(prepared_stores):
    return WindowDataset([prepared_stores[0] / "eegmat"])


def _model():
    torch.manual_seed(0)
    return CrissCrossTransformer(d_model=32, n_layers=2, n_heads=4, d_ff=64, dropout=0.1,
                                 positional="sensor")


def test_probe_fold_leaves_backbone_untouched(eegmat):
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    feats = extract_features(model, eegmat)
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    split = next(iter(LeaveOneSubjectOut(seed=0).split(eegmat.table)))
    y = eegmat.table["label"].to_numpy()
    probe = linear_probe().fit(feats[split.train], y[split.train])
    scores = classification_metrics(y[split.test], probe.predict(feats[split.test]),
                                    probe.predict_proba(feats[split.test]), n_classes=2)
    assert 0.0 <= scores["balanced_accuracy"] <= 1.0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_features_are_cached_per_model_and_store(eegmat, tmp_path):
    model = _model()
    calls = []
    model.patch_embed.register_forward_hook(lambda *a: calls.append(1))
    cache = FeatureCache(tmp_path)
    first, computed = cache.features(model, eegmat)
    assert computed and first.shape == (len(eegmat), 32) and np.isfinite(first).all()
    n_calls = len(calls)
    assert n_calls > 0
    again, computed = cache.features(model, eegmat)
    assert not computed and len(calls) == n_calls and np.array_equal(first, again)
    other = _model()
    with torch.no_grad():
        other.head.proj.weight.add_(1.0)  # different weights -> different key
    assert cache.key(other, eegmat) != cache.key(model, eegmat)


def test_freeze_is_real():
    model = freeze(_model().train())
    assert not model.training
    assert all(not p.requires_grad for p in model.parameters())

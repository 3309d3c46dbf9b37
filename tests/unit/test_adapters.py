"""Backbone adapters and the criss-cross model's two classification heads."""
import pytest
import torch

from brainfm.bench.adapters import BackboneAdapter, get_adapter
from brainfm.checkpoint import from_pretrained, read_model_config, save_model
from brainfm.models.registry import get_family

TINY = get_family("criss_cross").small_config


def _batch(b=3, c=5, n=4, p=40):
    g = torch.Generator().manual_seed(0)
    sensors = torch.zeros(b, c, 8)
    sensors[..., :3] = torch.randn(b, c, 3, generator=g)
    sensors[..., 6:] = 1.0
    return torch.randn(b, c, n, p, generator=g), sensors


@pytest.mark.parametrize("head", ["pooled", "flatten"])
def test_both_heads_classify_and_survive_a_model_file(head, tmp_path):
    adapter = get_adapter("criss_cross")
    model = adapter.classifier(adapter.load({"model": TINY}), head, n_classes=3, n_chans=5,
                               n_patches=4).eval()
    x, sensors = _batch()
    logits = model(x, sensors)
    assert logits.shape == (3, 3)
    path = save_model(model, tmp_path / "m.pt")
    assert torch.allclose(from_pretrained(path).eval()(x, sensors), logits, atol=1e-6)


def test_flatten_head_needs_its_montage_and_ignores_padding():
    adapter = get_adapter("criss_cross")
    model = adapter.classifier(adapter.load({"model": TINY}), "flatten", 2, n_chans=5,
                               n_patches=4).eval()
    x, sensors = _batch()
    with pytest.raises(ValueError, match="5 channels x 4 patches.*head=pooled"):
        model(x[:, :, :3], sensors)
    mask = torch.ones(3, 5, dtype=torch.bool)
    mask[:, 4] = False
    noisy = x.clone()
    noisy[:, 4] = 100 * torch.randn_like(noisy[:, 4])   # whatever sits in a padded channel
    assert torch.allclose(model(x, sensors, mask), model(noisy, sensors, mask), atol=1e-5)


def test_scratch_builds_the_checkpoint_architecture_untrained(tmp_path, small_model):
    trained = small_model("criss_cross")
    path = save_model(trained, tmp_path / "m.pt")
    torch.manual_seed(123)
    fresh = get_adapter("criss_cross").load({"checkpoint": str(path)}, pretrained=False)
    assert fresh.config == read_model_config(path)
    differs = [not torch.equal(a, b) for a, b in zip(fresh.state_dict().values(),
                                                     trained.state_dict().values())]
    assert any(differs)


def test_unknown_families_and_heads_are_named():
    with pytest.raises(ValueError, match="registered families are criss_cross"):
        get_adapter("transformerz")
    with pytest.raises(ValueError, match="cannot import"):
        get_adapter("no_such_module:Adapter")
    with pytest.raises(ValueError, match="not a BackboneAdapter"):
        get_adapter("torch.nn:Linear")
    with pytest.raises(ValueError, match="no head 'attention'.*pooled, flatten"):
        get_adapter("criss_cross").check_head("attention")
    assert isinstance(get_adapter(f"{__name__}:OutsideAdapter"), OutsideAdapter)


class OutsideAdapter(BackboneAdapter):
    """A backbone that is no registered family, named by its import path."""

    family, heads = "outside", ("pooled",)

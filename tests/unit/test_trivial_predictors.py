"""The trivial predictors a pretrained model must beat, on inputs whose answer is known."""
import torch

from brainfm.tasks.trivial import spatial_mean, temporal_interpolation, trivial_predictions


def test_spatial_mean_uses_visible_real_channels_only():
    # channel c holds the constant c + 1; channel 3 is padding
    x = torch.arange(1.0, 5.0).view(1, 4, 1, 1).expand(1, 4, 3, 5).clone()
    x[:, 3] = 0.0
    mask = torch.zeros(1, 4, 3, dtype=torch.bool)
    mask[0, 0, 1] = True                      # hide channel 0 at patch 1
    mask[0, :, 2] = True                      # hide every channel at patch 2
    valid = torch.tensor([[True, True, True, False]])
    pred = spatial_mean(x, mask, valid)
    assert torch.allclose(pred[0, 0, 1], torch.full((5,), 2.5))       # mean of 2 and 3
    assert torch.allclose(pred[0, 0, 0], torch.full((5,), 2.0))       # mean of 1, 2, 3
    assert torch.equal(pred[0, :, 2], torch.zeros(4, 5))              # nothing visible


def test_temporal_interpolation_is_exact_on_a_straight_line():
    p, n = 4, 5
    x = torch.arange(float(n * p)).view(1, 1, n, p)                   # x(t) = t
    mask = torch.tensor([[[False, True, True, False, False]]])
    pred = temporal_interpolation(x, mask)
    assert torch.allclose(pred, x)                                    # a line stays a line


def test_temporal_interpolation_edges_and_empty_channels():
    x = torch.randn(1, 2, 4, 3)
    mask = torch.tensor([[[False, True, True, True], [True, True, True, True]]])
    pred = temporal_interpolation(x, mask)
    assert torch.equal(pred[0, 0, 0], x[0, 0, 0])                     # visible: unchanged
    # only a left neighbour: its last sample is held
    assert torch.allclose(pred[0, 0, 1:], x[0, 0, 0, -1].expand(3, 3))
    assert torch.equal(pred[0, 1], torch.zeros(4, 3))                 # no visible patch
    # only a right neighbour: its first sample is held
    mask2 = torch.tensor([[[True, True, False, False], [False] * 4]])
    pred2 = temporal_interpolation(x, mask2)
    assert torch.allclose(pred2[0, 0, :2], x[0, 0, 2, 0].expand(2, 3))


def test_trivial_predictions_never_read_hidden_patches():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 6, 8)
    mask = torch.rand(2, 5, 6) < 0.5
    changed = x.clone()
    changed[mask] = 1e6                                               # poison hidden cells
    a, b = trivial_predictions(x, mask), trivial_predictions(changed, mask)
    for name in a:
        assert torch.allclose(a[name][mask], b[name][mask]), name

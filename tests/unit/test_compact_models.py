"""EEGNet and ShallowConvNet: shapes for the windows of every shared dataset, learning."""
import pytest
import torch

from brainfm.models.compact import EEGNet, ShallowConvNet


@pytest.mark.parametrize("cls", [EEGNet, ShallowConvNet])
@pytest.mark.parametrize("c, t, k", [(19, 1000, 2), (8, 1000, 4), (4, 200, 2), (1, 1000, 3)])
def test_shapes(cls, c, t, k):
    model = cls(n_chans=c, n_outputs=k, n_times=t, sfreq=200.0).eval()
    assert model(torch.randn(3, c, t)).shape == (3, k)
    assert model(torch.randn(3, c, t // 200, 200)).shape == (3, k)   # patches flatten


@pytest.mark.parametrize("cls", [EEGNet, ShallowConvNet])
def test_learns_a_separable_problem(cls):
    """Class = which of two channels carries a 10 Hz burst: both models must learn it."""
    torch.manual_seed(0)
    t = torch.arange(400) / 200.0
    def batch(n):
        y = torch.randint(0, 2, (n,))
        x = 0.1 * torch.randn(n, 4, 400)
        x[torch.arange(n), y] += torch.sin(2 * torch.pi * 10 * t)
        return x, y
    model = cls(n_chans=4, n_outputs=2, n_times=400, sfreq=200.0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        x, y = batch(32)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    x, y = batch(200)
    acc = (model.eval()(x).argmax(1) == y).float().mean()
    assert acc > 0.9

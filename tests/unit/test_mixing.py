"""Corpus mixing: the policies' shares, the cap, and the shares a sampler actually draws."""
import numpy as np
import pytest

from brainfm.data.mixing import MixedBatchSampler, mixture_weights

WINDOWS = {"big": 9000, "mid": 900, "small": 100}
SECONDS = {"big": 9000 * 1.0, "mid": 900 * 10.0, "small": 100 * 10.0}


def test_policies():
    eq = mixture_weights(WINDOWS, SECONDS, "equal")
    assert eq == pytest.approx({k: 1 / 3 for k in WINDOWS})
    nat = mixture_weights(WINDOWS, SECONDS, "natural")
    assert nat == pytest.approx({"big": 0.9, "mid": 0.09, "small": 0.01})
    hours = mixture_weights(WINDOWS, SECONDS, "hours")
    assert hours == pytest.approx({"big": 9 / 19, "mid": 9 / 19, "small": 1 / 19})
    with pytest.raises(ValueError, match="policy"):
        mixture_weights(WINDOWS, SECONDS, "proportional")


def test_cap_moves_the_excess_to_the_others_in_proportion():
    w = mixture_weights(WINDOWS, SECONDS, "natural", cap=0.5)
    assert w["big"] == pytest.approx(0.5)
    assert w["mid"] / w["small"] == pytest.approx(9.0)               # proportions kept
    assert sum(w.values()) == pytest.approx(1.0)
    # a cap that pushes a second dataset over it is applied again
    w = mixture_weights({"a": 80, "b": 15, "c": 5}, {"a": 1, "b": 1, "c": 1}, "natural",
                        cap=0.4)
    assert w["a"] == pytest.approx(0.4) and max(w.values()) <= 0.4 + 1e-9
    assert sum(w.values()) == pytest.approx(1.0)


def _sampler(seed=0, epoch=0, rank=0, world=1, weights=None):
    codes = np.repeat([0, 1, 2], [9000, 900, 100])
    lengths = np.where(codes == 0, 200, 2000)
    channels = np.where(codes == 1, 19, 8)
    names = {0: "big", 1: "mid", 2: "small"}
    s = MixedBatchSampler(codes, lengths, channels, weights or {"big": 0.2, "mid": 0.3,
                                                                 "small": 0.5},
                          names, batch_size=16, seed=seed, rank=rank, world_size=world)
    s.set_epoch(epoch)
    return s, codes, lengths, channels


def test_sampler_draws_the_planned_shares_one_dataset_and_shape_per_batch():
    s, codes, lengths, channels = _sampler()
    drawn = np.zeros(3)
    for batch in s:
        b = np.asarray(batch)
        assert len(set(codes[b])) == 1 and len(set(lengths[b])) == 1
        assert len(set(channels[b])) == 1 and len(b) == 16
        drawn[codes[b[0]]] += 1
    assert len(s) == 625 and drawn.sum() == 625
    assert drawn.tolist() == [125, 188, 312]          # 625 x shares, remainders rounded


def test_sampler_order_is_a_function_of_seed_epoch_and_rank():
    first = list(_sampler()[0])
    assert first == list(_sampler()[0])
    assert first != list(_sampler(epoch=1)[0])
    r0, r1 = list(_sampler(rank=0, world=2)[0]), list(_sampler(rank=1, world=2)[0])
    assert len(r0) == len(r1) == 313 and r0 != r1


def test_small_dataset_is_cycled_not_exhausted():
    s, codes, _, _ = _sampler(weights={"big": 0.0, "mid": 0.0, "small": 1.0})
    seen = np.concatenate([np.asarray(b) for b in s])
    assert set(codes[seen]) == {2}
    # every window of the small dataset comes round before any comes round again
    first_pass = seen[:96]
    assert len(set(first_pass.tolist())) == 96

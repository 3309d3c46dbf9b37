"""Batch collation and the bucketing, DDP-aware batch sampler."""
import numpy as np
import torch

from brainfm.data.loading import BucketBatchSampler, collate_windows


def _item(c, n=5, y=0):
    return {"x": torch.ones(c, n, 200), "sensors": torch.ones(c, 8), "y": y, "subject": 0,
            "session": 0, "dataset": 0, "row": 0}


def test_collate_pads_channels_and_masks():
    batch = collate_windows([_item(4), _item(19, y=1)])
    assert batch["x"].shape == (2, 19, 5, 200)
    assert batch["channel_mask"].sum(1).tolist() == [4, 19]
    assert batch["x"][0, 4:].abs().sum() == 0 and batch["sensors"][0, 4:].abs().sum() == 0
    assert batch["y"].tolist() == [0, 1]


def test_sampler_buckets_lengths_and_covers_everything():
    lengths = np.array([1000] * 50 + [200] * 30)
    batches = list(BucketBatchSampler(lengths, 16, seed=1))
    assert all(len(set(lengths[b])) == 1 for b in batches)
    assert sorted(np.concatenate(batches).tolist()) == list(range(80))


def test_sampler_ddp_shares_are_equal_and_cover():
    lengths = np.array([1000] * 70)
    shares = [list(BucketBatchSampler(lengths, 8, rank=r, world_size=2, seed=3))
              for r in range(2)]
    assert len(shares[0]) == len(shares[1])
    seen = set(np.concatenate([np.concatenate(s) for s in shares]).tolist())
    assert seen == set(range(70))
    first = set(np.concatenate(shares[0]).tolist())
    # ranks read different windows (apart from the few batches repeated to equalise)
    assert len(first & set(np.concatenate(shares[1]).tolist())) <= 8


def test_sampler_reshuffles_per_epoch():
    s = BucketBatchSampler(np.full(64, 1000), 8, seed=0)
    a = list(s)
    s.set_epoch(1)
    assert list(s) != a

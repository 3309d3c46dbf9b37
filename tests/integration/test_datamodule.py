"""The DataModule over real stores: mixing montages, workers, splits and DDP shares."""
import numpy as np
import pytest
import torch

from brainfm.data.datamodule import BrainDataModule

pytestmark = pytest.mark.real_data

ALL = ["eegmat", "ssvep_exoskeleton", "muse_p300", "bonn", "delhi"]


def test_mixed_corpus_batches(prepared_stores):
    root, _ = prepared_stores
    dm = BrainDataModule(ALL, store_root=root, batch_size=32, seed=0)
    dm.setup()
    seen_channels, mixed = set(), False
    for batch in dm.train_dataloader():
        b, c, n, p = batch["x"].shape
        assert p == 200 and batch["sensors"].shape == (b, c, 8)
        assert batch["channel_mask"].shape == (b, c) and batch["channel_mask"].any(1).all()
        # padded channels carry no signal and no sensor code
        pad = ~batch["channel_mask"]
        assert batch["x"][pad].abs().sum() == 0 and batch["sensors"][pad].abs().sum() == 0
        counts = set(batch["channel_mask"].sum(1).tolist())
        seen_channels |= counts
        mixed = mixed or len(counts) > 1
    assert seen_channels == {1, 4, 8, 19} and mixed


def test_subject_split_is_disjoint(prepared_stores):
    root, _ = prepared_stores
    dm = BrainDataModule(["eegmat"], store_root=root, val_fraction=0.2,
                         test_groups=["eegmat/00", "eegmat/01"], labelled_only=True)
    dm.setup()
    subj = {k: set(v.table["subject"]) for k, v in dm.splits.items()}
    assert subj["test"] == {"00", "01"} and len(subj["val"]) == 7
    assert not (subj["train"] & subj["val"]) and not (subj["train"] & subj["test"])


def test_two_workers_match_zero_workers(prepared_stores):
    root, _ = prepared_stores
    batches = {}
    for workers in (0, 2):
        dm = BrainDataModule(["delhi", "muse_p300"], store_root=root, batch_size=64,
                             num_workers=workers, seed=5, val_fraction=0.0)
        dm.setup()
        batches[workers] = [b["row"] for b in dm.train_dataloader()]
    assert len(batches[0]) == len(batches[2])
    assert all(torch.equal(a, b) for a, b in zip(batches[0], batches[2]))


def test_ddp_ranks_read_disjoint_shares(prepared_stores):
    from brainfm.data.loading import BucketBatchSampler

    root, _ = prepared_stores
    dm = BrainDataModule(["ssvep_exoskeleton"], store_root=root, val_fraction=0.0)
    dm.setup()
    ds = dm.splits["train"]
    shares = [np.concatenate(list(BucketBatchSampler(ds.shape_keys(), 64, rank=r,
                                                     world_size=2))) for r in range(2)]
    assert len(set(shares[0]) & set(shares[1])) == 0
    assert len(set(shares[0]) | set(shares[1])) == len(ds)


def test_fast_batches_equal_generic_collate(prepared_stores):
    """load_batch (the DataModule's path) gives what items + collate_windows give."""
    from brainfm.data.loading import WindowDataset, collate_windows

    root, _ = prepared_stores
    ds = WindowDataset([root / "eegmat", root / "ssvep_exoskeleton", root / "bonn"])
    rng = np.random.default_rng(0)
    same_length = np.flatnonzero(ds.shape_keys() == 1000)
    idx = rng.choice(same_length, 48, replace=False)
    fast = ds.load_batch(idx)
    order = fast["row"].numpy()
    slow = collate_windows(ds.__getitems__(order))
    for key in ("x", "sensors", "channel_mask", "y", "subject", "session", "dataset", "row"):
        assert torch.equal(fast[key], slow[key]), key
    assert sorted(order.tolist()) == sorted(idx.tolist())

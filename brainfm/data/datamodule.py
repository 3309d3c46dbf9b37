"""A Lightning DataModule over corpus stores, with subject-level train/val/test splits."""
from __future__ import annotations

import lightning as L
import numpy as np
import torch

from .groups import subject_groups
from .loading import WindowDataset, batch_loader, resolve_stores


def split_groups(table, val_fraction: float, test_groups=None, val_groups=None,
                 seed: int = 0) -> dict[str, np.ndarray]:
    """Row indices of train/val/test, split by group (subject; recording where no subject).

    Explicit ``test_groups``/``val_groups`` win; otherwise a seeded ``val_fraction`` of the
    remaining groups is held out. No group ever lands in two splits.
    """
    groups = subject_groups(table)
    test = set(map(str, test_groups or []))
    rest = sorted(set(groups) - test)
    if val_groups is not None:
        val = set(map(str, val_groups))
    else:
        rng = np.random.default_rng(seed)
        n_val = int(round(val_fraction * len(rest))) if val_fraction > 0 else 0
        n_val = min(max(n_val, 1 if val_fraction > 0 and len(rest) > 1 else 0), len(rest) - 1)
        val = set(rng.permutation(rest)[:n_val].tolist()) if n_val > 0 else set()
    if val & test:
        raise ValueError(f"groups {sorted(val & test)} are in both validation and test")
    is_test = np.isin(groups, list(test))
    is_val = np.isin(groups, list(val))
    return {"train": np.flatnonzero(~is_test & ~is_val), "val": np.flatnonzero(is_val),
            "test": np.flatnonzero(is_test), "groups": groups}


class BrainDataModule(L.LightningDataModule):
    """Windows of one or many corpus stores, batched to the brainfm batch contract.

    Parameters
    ----------
    stores : list of str
        Dataset names under ``store_root`` or store folders; datasets with different channel
        sets and window lengths mix (channels are padded, lengths bucketed).
    labelled_only : bool
        Drop unlabelled windows (for supervised tasks).
    bucket_channels : bool
        Also bucket by channel count, so batches need no channel padding.
    max_abs : float, optional
        Drop windows whose peak |x| reaches this (standardised units; 1.0 = 100 uV).
    val_fraction, test_groups, val_groups : see :func:`split_groups`.

    Under DDP each rank reads its own share of the batches (see :class:`BucketBatchSampler`);
    run the Trainer with ``use_distributed_sampler=False`` so Lightning leaves it in place.
    """

    def __init__(self, stores, store_root: str = "stores", patch_len: int = 200,
                 batch_size: int = 64, num_workers: int = 0, val_fraction: float = 0.1,
                 test_groups=None, val_groups=None, labelled_only: bool = False,
                 bucket_channels: bool = False, seed: int = 0, pin_memory: bool = False,
                 max_abs: float | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.store_paths = resolve_stores(list(stores), store_root)
        self.full: WindowDataset | None = None
        self.splits: dict[str, WindowDataset] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.full is not None:
            return
        hp = self.hparams
        full = WindowDataset(self.store_paths, patch_len=hp.patch_len)
        keep = np.ones(len(full), dtype=bool)
        if hp.labelled_only:
            keep &= full.table["label"].to_numpy() >= 0
        if hp.max_abs is not None:  # CBraMod's amplitude rule, applied when loading
            keep &= full.table["max_abs"].to_numpy() < hp.max_abs
        if not keep.all():
            full = full.subset(np.flatnonzero(keep))
        parts = split_groups(full.table, hp.val_fraction, hp.test_groups, hp.val_groups,
                             hp.seed)
        self.full = full
        self.groups = parts.pop("groups")
        self.splits = {name: full.subset(rows) for name, rows in parts.items()}

    @property
    def dataset_names(self) -> dict[int, str]:
        """Integer code of each dataset in batches (``batch["dataset"]``) -> its name."""
        if self.full is None:
            return {}
        pairs = self.full.table[["dataset_code", "dataset"]].drop_duplicates()
        return dict(zip(pairs["dataset_code"].tolist(), pairs["dataset"].tolist()))

    def _rank(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 0, 1
        return int(trainer.global_rank), int(trainer.world_size)

    def _loader(self, split: str, shuffle: bool) -> torch.utils.data.DataLoader:
        rank, world = self._rank()
        hp = self.hparams
        return batch_loader(self.splits[split], hp.batch_size, shuffle, seed=hp.seed,
                            channel_keys=hp.bucket_channels, rank=rank, world_size=world,
                            num_workers=hp.num_workers, pin_memory=hp.pin_memory)

    def train_dataloader(self):
        return self._loader("train", shuffle=True)

    def val_dataloader(self):
        return self._loader("val", shuffle=False)

    def test_dataloader(self):
        return self._loader("test", shuffle=False)

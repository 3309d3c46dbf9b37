"""A Lightning DataModule over corpus stores, with subject-level train/val/test splits."""
from __future__ import annotations

import lightning as L
import numpy as np
import torch

from .groups import subject_groups
from .loading import WindowDataset, batch_loader, resolve_stores, sampled_loader
from .mixing import MixedBatchSampler, mixture_weights


def split_groups(table, val_fraction: float, test_groups=None, val_groups=None,
                 seed: int = 0) -> dict[str, np.ndarray]:
    """Row indices of train/val/test, split by group (subject; recording where no subject).

    Explicit ``test_groups``/``val_groups`` win; otherwise a seeded ``val_fraction`` of the
    remaining groups of EACH dataset is held out (at least one group of every dataset that
    has two or more), so that every dataset has a held-out figure. No group ever lands in
    two splits.
    """
    groups = subject_groups(table)
    test = set(map(str, test_groups or []))
    if val_groups is not None:
        val = set(map(str, val_groups))
    else:
        rng = np.random.default_rng(seed)
        datasets = table["dataset"].astype(str).to_numpy()
        val = set()
        for name in sorted(set(datasets)):
            rest = sorted(set(groups[datasets == name]) - test)
            val |= set(_held_out(rest, val_fraction, rng))
    if val & test:
        raise ValueError(f"groups {sorted(val & test)} are in both validation and test")
    is_test = np.isin(groups, list(test))
    is_val = np.isin(groups, list(val))
    return {"train": np.flatnonzero(~is_test & ~is_val), "val": np.flatnonzero(is_val),
            "test": np.flatnonzero(is_test), "groups": groups}


def _held_out(groups: list, fraction: float, rng) -> list:
    """A seeded ``fraction`` of ``groups``: at least one when there are two or more, never
    all of them."""
    if fraction <= 0 or len(groups) < 2:
        return []
    n = min(max(int(round(fraction * len(groups))), 1), len(groups) - 1)
    return rng.permutation(groups)[:n].tolist()


def amplitude_keep(table, max_abs: float | None = None,
                   max_abs_relative: float | None = None) -> tuple[np.ndarray, dict]:
    """Which windows pass the amplitude rules, and per dataset what was rejected.

    ``max_abs`` is CBraMod's absolute rule (standardised units: 1.0 = 100 uV), fit for
    clean scalp EEG in a narrow amplitude range and nothing else: it drops most intracranial
    and every 64-channel BCI2000 window. ``max_abs_relative`` is decided per dataset from
    the data: a window is rejected when its peak exceeds this multiple of the dataset's
    median window peak (artefacts are tens of times the typical peak; seizures a few times).
    """
    peak = table["max_abs"].to_numpy()
    datasets = table["dataset"].astype(str).to_numpy()
    keep = np.ones(len(table), dtype=bool)
    report = {}
    for name in sorted(set(datasets)):
        rows = datasets == name
        limit = np.inf if max_abs is None else float(max_abs)
        if max_abs_relative is not None:
            limit = min(limit, float(max_abs_relative) * float(np.median(peak[rows])))
        ok = peak[rows] < limit
        keep[rows] = ok
        report[name] = {"windows": int(rows.sum()), "rejected": int((~ok).sum()),
                        "max_abs": None if np.isinf(limit) else round(limit, 4)}
    return keep, report


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
    max_abs, max_abs_relative : float, optional
        Amplitude rejection, absolute or per dataset (see :func:`amplitude_keep`); what was
        rejected is in ``rejection``.
    mix, mix_cap : str, float, optional
        How training batches mix datasets (``natural``, ``equal`` or ``hours``; see
        :mod:`brainfm.data.mixing`); None keeps plain shuffling. The shares are in
        ``mixture``.
    val_fraction, test_groups, val_groups : see :func:`split_groups`.

    Under DDP each rank reads its own share of the batches (see :class:`BucketBatchSampler`);
    run the Trainer with ``use_distributed_sampler=False`` so Lightning leaves it in place.
    """

    def __init__(self, stores, store_root: str = "stores", patch_len: int = 200,
                 batch_size: int = 64, num_workers: int = 0, val_fraction: float = 0.1,
                 test_groups=None, val_groups=None, labelled_only: bool = False,
                 bucket_channels: bool = False, seed: int = 0, pin_memory: bool = False,
                 max_abs: float | None = None, max_abs_relative: float | None = None,
                 mix: str | None = None, mix_cap: float | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.store_paths = resolve_stores(list(stores), store_root)
        self.full: WindowDataset | None = None
        self.splits: dict[str, WindowDataset] = {}
        self.rejection: dict = {}
        self.mixture: dict[str, float] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.full is not None:
            return
        hp = self.hparams
        full = WindowDataset(self.store_paths, patch_len=hp.patch_len)
        keep = np.ones(len(full), dtype=bool)
        if hp.labelled_only:
            keep &= full.table["label"].to_numpy() >= 0
        amplitude_ok, self.rejection = amplitude_keep(full.table, hp.max_abs,
                                                      hp.max_abs_relative)
        keep &= amplitude_ok
        if not keep.all():
            full = full.subset(np.flatnonzero(keep))
        parts = split_groups(full.table, hp.val_fraction, hp.test_groups, hp.val_groups,
                             hp.seed)
        self.full = full
        self.groups = parts.pop("groups")
        self.splits = {name: full.subset(rows) for name, rows in parts.items()}
        if hp.mix is not None:
            train = self.splits["train"].table
            sfreq = np.array([store.sfreq for store in self.full.stores])
            length = train["n_samples"] / sfreq[train["store"].to_numpy()]
            self.mixture = mixture_weights(
                train["dataset"].value_counts().to_dict(),
                length.groupby(train["dataset"]).sum().to_dict(), hp.mix, hp.mix_cap)

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
        if self.hparams.mix is None:
            return self._loader("train", shuffle=True)
        rank, world = self._rank()
        hp, train = self.hparams, self.splits["train"]
        sampler = MixedBatchSampler(
            train.codes("dataset"), train.shape_keys(), train.channel_keys(), self.mixture,
            self.dataset_names, hp.batch_size, seed=hp.seed, rank=rank, world_size=world)
        return sampled_loader(train, sampler, hp.num_workers, hp.pin_memory)

    def val_dataloader(self):
        return self._loader("val", shuffle=False)

    def test_dataloader(self):
        return self._loader("test", shuffle=False)

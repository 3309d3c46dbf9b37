"""One contract for every registered model family, and for a family that exists only in
the tests (tests/new_family.py), registered here and known to brainfm through the registry
alone: forward shapes and features, a pretraining step of its own task, the checkpoint
folder round trip (EMA weights too), prepare/embed on a real recording, the benchmark's
heads, and what the checkpoint reader and the Lightning reader ask of the record."""
from __future__ import annotations

import copy

import lightning as L
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import brainfm
from brainfm.bench.adapters import get_adapter
from brainfm.checkpoint import from_pretrained
from brainfm.models.registry import (DEFAULT_FAMILY, FAMILIES, family_of, family_of_task,
                                     get_family)
from brainfm.paths import sample_root
from brainfm.tasks.base import build_task

from .. import new_family
from ..helpers import same_weights

NAMES = [*FAMILIES, new_family.NAME]
B, C, N = 2, 3, 4


@pytest.fixture(autouse=True, scope="module")
def registered_test_family():
    new_family.register()
    yield
    new_family.unregister()


def _batch(patch_len: int, b: int = B, c: int = C) -> dict:
    g = torch.Generator().manual_seed(0)
    sensors = torch.zeros(b, c, 8)
    sensors[..., :3] = torch.randn(b, c, 3, generator=g) * 0.08
    sensors[..., 6] = 1.0   # eeg
    mask = torch.ones(b, c, dtype=torch.bool)
    mask[0, -1] = False     # one padded channel
    return {"x": torch.randn(b, c, N, patch_len, generator=g) * 0.5, "sensors": sensors,
            "channel_mask": mask, "dataset": torch.zeros(b, dtype=torch.long),
            "y": torch.zeros(b, dtype=torch.long)}


def test_the_default_family_is_registered_and_names_itself():
    assert DEFAULT_FAMILY in FAMILIES and get_family(None).name == DEFAULT_FAMILY
    # the record answers which objectives its task offers (the masked-patch task's choice)
    assert get_family("criss_cross").objectives() == ("reconstruction", "latent", "band_power")
    assert get_family("diffusion").objectives() == ()


@pytest.mark.parametrize("name", NAMES)
def test_features_have_the_contract_shapes(name, small_model):
    model = small_model(name).eval()
    assert family_of(model).name == name
    batch = _batch(model.patch_len)
    feats = model.forward_features(batch["x"], batch["sensors"], batch["channel_mask"])
    layers = model.forward_layers(batch["x"], batch["sensors"], batch["channel_mask"])
    assert feats.shape[:3] == (B, C, N) and torch.isfinite(feats).all()
    assert len(layers) >= 1 and all(t.shape[:3] == (B, C, N) for t in layers)
    pooled = model.pooled_features(batch["x"], batch["sensors"], batch["channel_mask"])
    assert pooled.shape == (B, feats.shape[-1])
    encoding = model.data_contract()["channel_encoding"]
    assert encoding == get_family(name).channel_encoding(model.config)


@pytest.mark.parametrize("name", NAMES)
def test_one_pretraining_step_of_the_familys_own_task(name, tmp_path):
    record = get_family(name)
    task = build_task({"kind": record.default_task},
                      {**record.small_config, "family": name})
    assert task.kind == record.default_task
    assert task.hparams["model"]["family"] == name   # what the Lightning reader asks
    assert family_of_task(dict(task.hparams)).name == name
    before = copy.deepcopy(task.model.state_dict())
    batch = _batch(task.model.patch_len)
    trainer = L.Trainer(max_steps=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        limit_val_batches=0, default_root_dir=tmp_path)
    trainer.fit(task, train_dataloaders=DataLoader([batch], batch_size=None))
    assert trainer.global_step == 1
    after = task.model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)   # it learned
    assert all(torch.isfinite(v).all() for v in after.values() if v.is_floating_point())


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_folder_round_trip_with_ema_weights(name, small_model, tmp_path):
    model = small_model(name).eval()
    ema = small_model(name)
    with torch.no_grad():
        for p in ema.parameters():
            p.add_(0.01)
    folder = brainfm.save_pretrained(model, tmp_path / "ck", ema=ema, weights="ema")
    loaded = from_pretrained(folder).eval()
    assert type(loaded) is type(model) and same_weights(loaded, model)
    assert same_weights(from_pretrained(folder, weights="ema"), ema)
    batch = _batch(model.patch_len)
    args = (batch["x"], batch["sensors"], batch["channel_mask"])
    assert torch.allclose(loaded.forward_features(*args), model.forward_features(*args))
    plain = brainfm.save_pretrained(model, tmp_path / "plain")
    with pytest.raises(brainfm.checkpoint.CheckpointError, match=f"{plain}: holds no EMA"):
        from_pretrained(plain, weights="ema")


@pytest.mark.parametrize("name", NAMES)
def test_prepare_and_embed_a_real_recording(name, small_model):
    model = small_model(name)
    edf = sample_root() / "eegmat" / "Subject00_1.edf"
    rec = model.prepare(edf)
    assert rec.sfreq == model.data_contract()["sfreq"] == 200.0   # the default contract
    emb = model.embed(rec)
    width = model.pooled_features(*[_batch(model.patch_len)[k] for k in
                                    ("x", "sensors", "channel_mask")]).shape[-1]
    assert emb.windows.shape == (len(emb.start_s), width) and len(emb) > 1
    assert np.isfinite(emb.windows).all() and emb.recording.shape == (width,)


@pytest.mark.parametrize("name", NAMES)
def test_the_benchmark_puts_every_head_on_it(name, small_model, tmp_path):
    adapter = get_adapter(name)
    assert adapter.heads == get_family(name).heads
    batch = _batch(small_model(name).patch_len)
    for head in adapter.heads:
        clf = adapter.classifier(small_model(name), head, n_classes=3, n_chans=C, n_patches=N)
        logits = clf(batch["x"], batch["sensors"], batch["channel_mask"])
        assert logits.shape == (B, 3)
        logits.sum().backward()
        assert any(p.grad is not None for p in clf.head.parameters())
    feats = adapter.features(small_model(name), batch["x"], batch["sensors"],
                             batch["channel_mask"])
    assert feats.shape[:3] == (B, C, N)
    with pytest.raises(ValueError, match="has no head 'nonsense'"):
        adapter.check_head("nonsense")


def test_foreign_state_dicts_are_recognised_by_their_familys_record():
    from brainfm.models.registry import import_format_of

    cbramod = {"patch_embedding.proj_in.0.weight": torch.zeros(1),
               "encoder.layers.0.self_attn_s.in_proj_weight": torch.zeros(1)}
    family, fmt = import_format_of(cbramod)
    assert (family.name, fmt.name) == ("criss_cross", "cbramod")
    assert import_format_of({"weight": torch.zeros(1)}) == (None, None)


def test_a_task_that_trains_another_family_names_a_matching_pair():
    with pytest.raises(ValueError, match="task=patch_autoencoding model="):
        build_task({"kind": "patch_autoencoding"}, {"family": DEFAULT_FAMILY})


def test_an_installed_packages_family_is_found_by_its_entry_point(tmp_path, monkeypatch,
                                                                   small_model):
    """A family offered by an installed package (an entry point in ``brainfm.families``) is
    registered the first time it is asked for: a checkpoint folder of it loads in a process
    that never imported its module."""
    import importlib

    from brainfm.models.registry import ENTRY_POINTS

    folder = brainfm.save_pretrained(small_model(new_family.NAME), tmp_path / "ck")
    new_family.unregister()
    try:
        with pytest.raises(ValueError, match=f"model family '{new_family.NAME}' is unknown"):
            get_family(new_family.NAME)
        site = tmp_path / "site"
        info = site / "brainfm_patch_mlp-0.1.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: brainfm-patch-mlp\n"
                                       "Version: 0.1\n")
        (info / "entry_points.txt").write_text(f"[{ENTRY_POINTS}]\n"
                                               f"{new_family.NAME} = tests.new_family:FAMILY\n")
        monkeypatch.syspath_prepend(str(site))
        importlib.invalidate_caches()
        model = from_pretrained(folder)
        assert isinstance(model, new_family.PatchMLP) and new_family.NAME in FAMILIES
    finally:
        new_family.register()

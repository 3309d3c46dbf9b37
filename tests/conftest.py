"""Shared fixtures: the real recordings, corpus stores prepared once per session, and small
models of every registered family."""
from __future__ import annotations

import os

import pytest

from brainfm.paths import data_root as _data_root
from brainfm.paths import sample_root


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def data_root():
    """The shared real-data folder; missing data fails in CI and skips elsewhere."""
    root = _data_root()
    if not (root / "eegmat").is_dir():
        if _in_ci():
            pytest.fail(f"shared data missing at {root}: CI must run the real-data tests; "
                        "set BRAINFM_DATA_ROOT", pytrace=False)
        pytest.skip(f"shared data not found at {root} (set BRAINFM_DATA_ROOT)")
    return root


@pytest.fixture(scope="session")
def prepared_stores(data_root, tmp_path_factory):
    """Every shared dataset prepared once into a session-wide store root (float16)."""
    from brainfm.data.prep import prepare

    from .helpers import load_configs

    root = tmp_path_factory.mktemp("stores")
    summaries = {}
    for name in ("eegmat", "ssvep_exoskeleton", "muse_p300", "bonn", "delhi"):
        spec, std = load_configs(name)
        summaries[name] = prepare(spec, std, data_root, root / name, progress=False)
    return root, summaries


@pytest.fixture(scope="session")
def sample_store_root(tmp_path_factory):
    """A store root holding ``eegmat_sample`` (the embedded 4-subject sample), prepared once
    per session as ``brainfm-prep dataset=eegmat_sample`` would. Tests read it; a test that
    changes a store prepares its own."""
    from brainfm.data.prep import prepare

    from .helpers import load_configs

    spec, std = load_configs("eegmat_sample")
    root = tmp_path_factory.mktemp("sample_stores")
    prepare(spec, std, sample_root(), root / spec.store_name(), progress=False, n_jobs=1)
    return root


@pytest.fixture
def small_model():
    """A factory of small untrained models: ``small_model("diffusion", n_layers=3)`` builds
    the family's record's ``small_config`` with the overrides (the default family when no
    name is given)."""
    import torch

    from brainfm.models.registry import get_family

    def build(family: str | None = None, **overrides):
        torch.manual_seed(0)
        record = get_family(family)
        return record.build({**record.small_config, **overrides})

    return build

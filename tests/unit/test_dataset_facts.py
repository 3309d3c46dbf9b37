"""A dataset's facts (licence, paradigm, citation) live in its config and leave its store alone."""
from __future__ import annotations

from dataclasses import replace

from brainfm.configuration import declared_dataset, dataset_prep_configs
from brainfm.data.prep import config_hash


def test_declaring_facts_does_not_make_a_prepared_store_stale():
    spec, std = dataset_prep_configs("eegmat")
    bare = replace(spec, licence=None, paradigm=None, citation="")
    assert config_hash(bare, std, "float16") == config_hash(spec, std, "float16")
    windows = replace(spec, windows=replace(spec.windows, length_s=4.0))
    assert config_hash(windows, std, "float16") != config_hash(spec, std, "float16")


def test_the_sample_inherits_its_parents_facts_and_states_its_own_licence():
    sample, full = declared_dataset("eegmat_sample"), declared_dataset("eegmat")
    assert sample.paradigm == full.paradigm == "task" and sample.citation == full.citation
    assert sample.licence.startswith("derived from ") and "ODC-By" in full.licence
    assert declared_dataset("not_a_dataset") is None

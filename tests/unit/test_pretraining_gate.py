"""brainfm-bench's warning for checkpoints that do not beat the trivial predictors."""
import warnings

import pytest

from brainfm.bench import pretrained
from brainfm.bench.pretrained import (UnlearnedCheckpointWarning, pretraining_gate,
                                      warn_if_unlearned)


def _extra(**ratios):
    return {"training": {"heldout": {
        name: {"model_vs_best_trivial": r, "multichannel": name != "bonn"}
        for name, r in ratios.items()}}}


def test_gate_names_the_failing_multichannel_datasets():
    assert pretraining_gate(_extra(eegmat=0.9, ssvep=0.95)) == {}
    assert pretraining_gate(_extra(eegmat=0.9, ssvep=1.2, bonn=1.5)) == {"ssvep": 1.2}
    assert pretraining_gate({}) is None                       # no figures: cannot tell


def test_warning_is_loud_names_datasets_and_comes_once(monkeypatch):
    monkeypatch.setattr(pretrained, "_WARNED", set())
    with pytest.warns(UnlearnedCheckpointWarning, match=r"ssvep \(model/trivial MSE 1\.200\)"):
        warn_if_unlearned("a.pt", _extra(eegmat=0.9, ssvep=1.2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_if_unlearned("a.pt", _extra(eegmat=0.9, ssvep=1.2))   # once per checkpoint
        warn_if_unlearned("b.pt", _extra(eegmat=0.9))              # passes: silent
    with pytest.warns(UnlearnedCheckpointWarning, match="no held-out figures"):
        warn_if_unlearned("c.pt", {})


def test_gate_judges_other_objectives_on_their_own_bar_and_on_collapse():
    healthy = {"effective_rank": 30.0, "std_mean": 1.0, "collapsed": False}
    latent = {"training": {"heldout": {}, "representation": healthy}}
    assert pretraining_gate(latent) == {}                  # no bar to miss, not collapsed
    collapsed = {"training": {"heldout": {}, "representation": {
        "effective_rank": 1.2, "std_mean": 1e-4, "collapsed": True}}}
    assert pretraining_gate(collapsed) == {"representation collapsed (effective rank)": 1.2}
    band = {"training": {"representation": healthy, "heldout": {
        "eegmat": {"band_power_vs_channel_mean": 0.93, "multichannel": True},
        "muse_p300": {"band_power_vs_channel_mean": 1.04, "multichannel": True},
        "delhi": {"band_power_vs_channel_mean": 1.06, "multichannel": False}}}}
    assert pretraining_gate(band) == {"muse_p300 (band power)": 1.04}

"""brainfm-pretrain's summary and brainfm-demo say what brainfm-bench's gate decides: the
same datasets fail, single-channel held-out data is shown but not judged."""
import pytest

from brainfm.bench.pretrained import pretraining_gate
from brainfm.cli import pretrain_summary
from brainfm.demo import _heldout_verdict


def _row(ratio, multichannel=True):
    row = {"model_vs_zero": 0.6 * ratio, "spatial_vs_zero": 0.6, "temporal_vs_zero": 1.5,
           "best_trivial": "spatial", "model_vs_best_trivial": ratio}
    if multichannel is not None:
        row["multichannel"] = multichannel
    return row


CASES = {
    "all beat": {"eegmat": _row(0.9), "ssvep": _row(0.95)},
    "one fails": {"eegmat": _row(0.9), "ssvep": _row(1.2)},
    "exactly 1 fails": {"eegmat": _row(1.0)},
    "single channel worse, not judged": {"eegmat": _row(0.9), "bonn": _row(1.5, False)},
    "only single channel": {"bonn": _row(1.5, False)},
    "row without the multichannel flag, not judged": {"old": _row(1.3, None)},
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_summary_and_demo_agree_with_the_gate(case):
    result = {"global_step": 300, "heldout": CASES[case]}
    failing = pretraining_gate({"training": result})
    beats, lines = _heldout_verdict(result)
    assert beats == (failing == {})
    text = pretrain_summary(result, 12.0)
    for name, row in CASES[case].items():
        (demo_line,) = [line for line in lines if f"subject of {name}:" in line]
        (cli_line,) = [line for line in text.splitlines() if line.startswith(f"    {name}:")]
        if name in failing:
            assert "does NOT beat" in demo_line and "does NOT beat it" in cli_line
        elif row.get("multichannel"):
            assert "BEATS" in demo_line and cli_line.endswith("beats it")
        else:
            assert "not judged" in demo_line and "not judged" in cli_line
            assert "NOT" not in demo_line + cli_line
    if failing:
        assert f"does not beat the best trivial predictor on {', '.join(sorted(failing))}" \
            in text
    else:
        assert "NOT a working pretrained model" not in text


def test_no_heldout_figures_is_said_not_passed():
    assert pretraining_gate({"training": {"global_step": 5}}) is None
    beats, lines = _heldout_verdict({"global_step": 5})
    assert not beats and "not checked" in lines[0]
    assert "was not checked" in pretrain_summary({"global_step": 5}, 1.0)


def test_a_diffusion_run_is_summarised_by_its_own_held_out_figures():
    """A denoiser's held-out rows (v-MSE vs predicting zeros) are shown, raw and EMA, with
    no masked-patch verdict (it has no channel-mean predictor to beat)."""
    result = {"global_step": 40, "objective": "diffusion",
              "heldout": {"eegmat": {"model_vs_zero": 0.25, "ema_vs_zero": 0.5}}}
    text = pretrain_summary(result, 3.0)
    assert "eegmat: 0.250 / 0.500" in text and "diffusion_checks.py" in text
    assert "masked-patch" not in text and "trivial" not in text

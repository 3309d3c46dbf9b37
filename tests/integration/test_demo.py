"""brainfm-demo: the verdict it prints about pretraining, and the whole path end to end."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from brainfm.demo import _heldout_verdict, results_table, subject_scores


def _result(ratio):
    return {"heldout": {"eegmat_sample": {
        "model_vs_zero": 0.6 * ratio, "spatial_vs_zero": 0.6, "temporal_vs_zero": 1.5,
        "best_trivial": "spatial", "model_vs_best_trivial": ratio, "multichannel": True}}}


def test_verdict_says_plainly_whether_the_model_beats_the_trivial_predictors():
    beats, lines = _heldout_verdict(_result(0.95))
    assert beats and "BEATS" in lines[0] and "0.950" in lines[0]
    beats, lines = _heldout_verdict(_result(1.02))
    assert not beats and "does NOT beat" in lines[0] and "max_steps" in lines[0]
    beats, lines = _heldout_verdict({})
    assert not beats and "not checked" in lines[0]


def test_results_table_averages_seeds_within_subjects_first():
    """The table counts subjects (bench.report.per_subject): seeds are averaged within a
    subject, and fold-level rows are not a subject."""
    import pandas as pd

    rows = [("probe", "00", 0, 0.6), ("probe", "00", 1, 0.8), ("probe", "01", 0, 0.5),
            ("probe", "__fold__", 0, 0.1), ("csp", "00", 0, 0.9), ("csp", "01", 0, 0.9)]
    table = pd.DataFrame([{"dataset": "eegmat_sample", "pipeline": p, "protocol": "loso",
                           "fold": 0, "subject": s, "seed": seed,
                           "metric": "balanced_accuracy", "value": v}
                          for p, s, seed, v in rows]
                         + [{"dataset": "eegmat_sample", "pipeline": "probe",
                             "protocol": "loso", "fold": 0, "subject": "00", "seed": 0,
                             "metric": "auroc", "value": 0.0}])
    lines = results_table(subject_scores(table)).splitlines()
    assert lines[1].split() == ["csp", "0.900", "+-", "0.000", "(2", "subjects)"]
    assert lines[2].split()[:2] == ["probe", "0.600"] and "(2 subjects)" in lines[2]


@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
    """Every stage runs as the printed command, and every output the summary names exists:
    the checkpoint folder loads, embeddings and the benchmark's results are written, the
    plot is drawn; run twice, as `make demo` is, into the same fixed folders. (Few
    pretraining steps: the verdict may go either way; it must be said.)"""
    out, stores = tmp_path / "demo", tmp_path / "stores"
    demo = [str(Path(sys.executable).with_name("brainfm-demo")), "--out", str(out),
            "--store-root", str(stores), "--pretrain-steps", "30"]
    for _ in range(2):  # a second run into the same folders starts the stages again
        done = subprocess.run(demo, cwd=tmp_path, capture_output=True, text=True,
                              timeout=1500)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    text = done.stdout
    for command in ("$ brainfm-prep dataset=eegmat_sample", "$ brainfm-pretrain experiment=pretrain_demo",
                    "$ brainfm-export", "$ brainfm-embed checkpoint=", "$ brainfm-bench experiment=bench_demo"):
        assert command in text, command
    assert "the model BEATS the trivial predictors" in text or "does NOT beat" in text
    assert "balanced accuracy (mean +- sd over subjects)" in text
    for name in ("csp_lda", "fb_ts_lr", "criss_cross_probe", "criss_cross_finetune"):
        assert name in text
    import brainfm

    model = brainfm.from_pretrained(out / "checkpoint")
    assert json.loads((out / "checkpoint" / "config.json").read_text())
    assert model.data_contract()["sfreq"] == 200.0
    assert (out / "embeddings" / "windows.parquet").exists()
    assert (out / "bench" / "results.csv").exists() and (out / "bench" / "summary.md").exists()
    assert (out / "demo.png").stat().st_size > 10_000
    assert f"demo plot          {out / 'demo.png'}" in text
    assert "[INFO]" not in text + done.stderr and "Tip" not in text + done.stderr

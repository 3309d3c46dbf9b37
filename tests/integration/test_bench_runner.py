"""brainfm-bench's runner on real stores: cells, tidy table, summary, plots, resumability."""
import re

import pytest

from brainfm.bench.runner import run_benchmark

pytestmark = [pytest.mark.real_data, pytest.mark.slow]

TINY = {"d_model": 32, "n_layers": 2, "n_heads": 4, "d_ff": 64, "positional": "sensor"}


def test_runner_writes_tables_and_resumes(prepared_stores, tmp_path):
    store_root = prepared_stores[0]
    experiment = {
        "datasets": ["eegmat"], "seeds": [0], "max_folds": 2,
        "protocols": {"default": {"name": "loso"}},
        "pipelines": {"ts_lr": {"kind": "classical", "baseline": "ts_lr"},
                      "probe": {"kind": "probe", "backbone": {"model": TINY}},
                      "scratch": {"kind": "scratch", "epochs": 1, "patience": 1,
                                  "backbone": {"model": TINY}}}}
    first = run_benchmark(experiment, store_root, tmp_path, progress=False)
    assert first["computed"] == 6 and first["skipped"] == 0
    table = __import__("pandas").read_csv(tmp_path / "results.csv", dtype={"subject": str})
    assert set(table.columns) == {"dataset", "pipeline", "protocol", "fold", "subject", "seed",
                                  "metric", "value"}
    per_subject = table[table["subject"] != "__fold__"]
    assert set(per_subject["subject"]) == {"00", "01"}        # LOSO: the test subjects only
    assert {"balanced_accuracy", "auroc", "auprc"} <= set(table["metric"])
    summary = (tmp_path / "summary.md").read_text()
    assert "| ts_lr (broadband, 5 s) |" in summary and "p Holm" in summary
    scratch = next(line for line in summary.splitlines() if line.startswith("| scratch |"))
    assert re.search(r"\| 1 \| auroc [01]\.\d{3} \|$", scratch)   # epoch chosen, its score
    assert (tmp_path / "eegmat_loso_balanced_accuracy.png").exists()
    again = run_benchmark(experiment, store_root, tmp_path, progress=False)
    assert again["computed"] == 0 and again["skipped"] == 6


@pytest.mark.parametrize("how", ["by name", "by recording"])
def test_checkpoint_pretrained_on_the_test_data_is_refused(prepared_stores, tmp_path, how):
    """Self-supervised pretraining on the test recordings, under the dataset's own name or
    copied under another, is caught before any fold runs."""
    from brainfm.bench.protocols import LeakageError
    from brainfm.checkpoint import save_model
    from brainfm.data.store import CorpusStore
    from brainfm.models import CrissCrossTransformer

    store_root = prepared_stores[0]
    ids = sorted(CorpusStore(store_root / "eegmat").recording_ids())
    extra = ({"datasets": ["eegmat", "bonn"]} if how == "by name" else
             {"datasets": ["my_copy_of_eegmat"], "recording_ids": ids})
    path = save_model(CrissCrossTransformer(**TINY), tmp_path / "ckpt.pt", extra=extra)
    experiment = {"datasets": ["eegmat"], "max_folds": 1,
                  "protocols": {"default": {"name": "loso"}},
                  "pipelines": {"ft": {"kind": "finetune", "epochs": 1,
                                       "backbone": {"checkpoint": str(path)}}}}
    with pytest.raises(LeakageError, match="pretrained on .*eegmat.*transductive"):
        run_benchmark(experiment, store_root, tmp_path / "out", progress=False)
    experiment["allow_pretraining_overlap"] = True     # the documented way to accept it
    experiment["pipelines"]["ft"] = {"kind": "probe",          # a probe takes no epochs
                                      "backbone": {"checkpoint": str(path)}}
    assert run_benchmark(experiment, store_root, tmp_path / "out", progress=False)["computed"]


def test_checkpoint_trained_on_other_standardisation_is_refused(prepared_stores, tmp_path):
    """A checkpoint that expects 256 Hz is not scored on a 200 Hz store: the runner checks
    the checkpoint's data contract against the store before any fold runs."""
    import brainfm
    from brainfm.data.store import CorpusStore
    from brainfm.errors import BrainfmError
    from brainfm.models import CrissCrossTransformer

    store_root = prepared_stores[0]
    standardise = dict(CorpusStore(store_root / "eegmat").meta["standardise"])
    experiment = {"datasets": ["eegmat"], "max_folds": 1,
                  "protocols": {"default": {"name": "loso"}},
                  "pipelines": {"probe": {"kind": "probe", "backbone": {}}}}
    for sfreq, refused in ((standardise["sfreq"], False), (256.0, True)):
        folder = tmp_path / f"ckpt_{sfreq:g}"
        brainfm.save_pretrained(CrissCrossTransformer(**TINY), folder, datasets=["bonn"],
                                standardise={**standardise, "sfreq": sfreq})
        experiment["pipelines"]["probe"]["backbone"] = {"checkpoint": str(folder)}
        if refused:
            with pytest.raises(BrainfmError, match=r"sfreq: store 200\.0 vs checkpoint 256\.0"):
                run_benchmark(experiment, store_root, tmp_path / "out", progress=False)
        else:
            assert run_benchmark(experiment, store_root, tmp_path / "out",
                                 progress=False)["computed"] == 1

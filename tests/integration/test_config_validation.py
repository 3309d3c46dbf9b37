"""Entry points check their whole configuration before the first expensive step and exit
non-zero with every problem listed; nothing (stores, checkpoints, cells) is made first."""
from pathlib import Path

import pytest

from brainfm.data.prep import prepare

from ..helpers import load_configs, run_tool, user_experiment

pytestmark = pytest.mark.real_data

SAMPLE = Path(__file__).resolve().parents[2] / "brainfm" / "sample_data" / "eegmat"


def test_bench_typos_are_all_reported_before_any_work(tmp_path):
    out = run_tool("brainfm-bench", "experiment=bench_quick", f"store_root={tmp_path}/stores",
                   f"results_dir={tmp_path}/results", f"hydra.run.dir={tmp_path}/run",
                   "pipelines.eegnet.kind=eegnett",
                   "pipelines.cca.datasets=[ssvep_exoskelton]",
                   "+protocols.bon={name: loso}")
    assert out.returncode != 0
    err = out.stderr
    assert "3 problem(s)" in err, err[-3000:]
    assert "pipelines.eegnet.kind='eegnett'" in err
    assert "pipelines.cca.datasets: unknown dataset 'ssvep_exoskelton'" in err
    assert "protocols.bon: unknown dataset 'bon'" in err
    assert not (tmp_path / "stores").exists() and not (tmp_path / "results").exists()


def test_pretrain_problems_are_all_reported_before_any_work(tmp_path):
    out = run_tool("brainfm-pretrain", "experiment=pretrain_quick",
                   f"store_root={tmp_path}/stores", f"hydra.run.dir={tmp_path}/run",
                   "data.datasets=[eegmat_sampel,../up]", "logger=csvv",
                   f"resume={tmp_path}/gone.ckpt", "checkpoint_every_minutes=-5",
                   "progress_every_s=0")
    assert out.returncode != 0
    err = out.stderr
    assert "6 problem(s)" in err, err[-3000:]
    assert "unknown dataset 'eegmat_sampel'" in err and "'../up' cannot name a store" in err
    assert "logger='csvv'" in err and f"resume={tmp_path}/gone.ckpt: no such checkpoint" in err
    assert "checkpoint_every_minutes=-5; use a number >= 0" in err
    assert "progress_every_s=0; use a number > 0" in err
    assert not (tmp_path / "stores").exists()


@pytest.mark.slow
def test_pretraining_on_a_store_where_every_recording_failed_is_refused(tmp_path):
    """Every recording of the sample damaged: the store holds only failures; pretraining
    stops before training and exports nothing."""
    bad = tmp_path / "bad"
    bad.mkdir()
    for edf in SAMPLE.glob("*.edf"):
        (bad / edf.name).write_bytes(edf.read_bytes()[:1000])
    spec, std = load_configs("eegmat_sample", [f"dataset.path={bad}"])
    view = spec.with_view("continuous") if hasattr(spec, "with_view") else spec
    folder = view.store_name() if hasattr(view, "store_name") else view.name
    summary = prepare(view, std, bad, tmp_path / "stores" / folder, progress=False,
                      n_jobs=1)
    assert summary.failed == 8 and summary.windows == 0
    out = run_tool("brainfm-pretrain", "experiment=pretrain_quick",
                   f"store_root={tmp_path}/stores", f"hydra.run.dir={tmp_path}/run")
    assert out.returncode != 0
    assert "has no windows (8 of 8 recordings failed" in out.stderr, out.stderr[-3000:]
    assert not (tmp_path / "run" / "checkpoint").exists()


TINY = {"d_model": 32, "n_layers": 2, "n_heads": 4, "d_ff": 64, "positional": "sensor"}


def _bench(tmp_path, *args, flags=(), cwd=None):
    """brainfm-bench with its stores, cells and run folder under ``tmp_path``; ``flags``
    (``--config-dir DIR``) go before the overrides."""
    return run_tool("brainfm-bench", *flags, f"store_root={tmp_path}/stores",
                    f"results_dir={tmp_path}/results", f"hydra.run.dir={tmp_path}/run",
                    "progress=false", *args, cwd=cwd or tmp_path)


def _refused_before_any_work(out, tmp_path, n_problems: int) -> str:
    """The command failed with the whole list and made no store, cell or checkpoint."""
    err = out.stdout + out.stderr
    assert out.returncode != 0, err[-3000:]
    assert f"{n_problems} problem(s)" in err, err[-3000:]
    assert "Traceback" not in err
    assert f"log: {tmp_path}/run/" in err
    for made in ("stores", "results", "checkpoints"):
        assert not (tmp_path / made).exists(), made
    return err


def test_bench_value_faults_are_all_listed_before_any_cell(tmp_path):
    """The faults that used to end in a traceback after 2-4 cells (or run wrongly with rc 0):
    all of them listed at once, before any store or cell."""
    err = _refused_before_any_work(_bench(
        tmp_path, "experiment=bench_demo", f"checkpoint={tmp_path}/no_such_checkpoint",
        "seeds=[0,-1]", "max_folds=-2", "pipelines.csp_lda.baseline=csp_lad",
        "pipelines.criss_cross_finetune.epochs=0", "+pipelines.eegnet={kind: eegnet, epochs: -3}",
        "+pipelines.criss_cross_finetune.backbone.family=criss_crosss",
        "protocols.default.name=loos", "+pipelines.criss_cross_probe.epochs=3"), tmp_path, 9)
    assert "seeds=[0, -1]: [-1] not whole number(s) >= 0" in err
    assert "max_folds=-2; use a whole number >= 1" in err
    assert "pipelines.csp_lda.baseline='csp_lad': unknown baseline" in err
    assert "pipelines.criss_cross_finetune.epochs=0; use a whole number >= 1" in err
    assert "pipelines.eegnet.epochs=-3" in err
    assert "backbone.family='criss_crosss': registered families are criss_cross" in err
    assert "protocols.default: unknown protocol 'loos'" in err
    assert ("pipelines.criss_cross_probe: a probe pipeline takes no option 'epochs'; it takes "
            "backbone") in err
    assert (f"no checkpoint at {tmp_path}/no_such_checkpoint (backbone.checkpoint of pipelines "
            "criss_cross_probe, criss_cross_probe_random, criss_cross_finetune)") in err


def test_checkpoint_of_another_sampling_rate_is_refused_before_the_store_is_made(tmp_path):
    """A 100 Hz checkpoint on the 200 Hz eegmat_sample: refused from the store's config,
    before the store is prepared (and, once it exists, from the store's own record)."""
    import brainfm
    from brainfm.models import CrissCrossTransformer

    spec, std = load_configs("eegmat_sample")
    folder = tmp_path / "ckpt_100hz"
    brainfm.save_pretrained(CrissCrossTransformer(**TINY), folder, datasets=["bonn"],
                            standardise={**std.as_dict(), "sfreq": 100.0})
    err = _refused_before_any_work(_bench(tmp_path, "experiment=bench_demo",
                                          f"checkpoint={folder}"), tmp_path, 1)
    # the probe of random weights takes the architecture only: no contract to meet
    assert (f"checkpoint {folder} (pipelines criss_cross_probe, criss_cross_finetune) expects "
            "data standardised otherwise than the store of eegmat_sample (sfreq: store 200.0 "
            "vs checkpoint 100.0)") in err


def test_protocol_options_inherited_from_another_protocol_are_refused_before_pretraining(
        tmp_path):
    """bench_cpu's LOSO default carries val_subjects; an experiment that switches to
    within_subject_kfold inherits it through Hydra's merge. The pretrained block (minutes)
    must not run before the refusal; null drops an inherited option."""
    configs = user_experiment(
        tmp_path, "wsk", "defaults:\n  - bench_cpu\n  - _self_\nname: wsk\n"
        "datasets: [eegmat_sample]\nprotocols:\n  default: {name: within_subject_kfold}\n"
        "pretrained: {datasets: [eegmat_sample, bonn]}\n")
    out = _bench(tmp_path, "experiment=wsk", flags=["--config-dir", configs])
    err = _refused_before_any_work(out, tmp_path, 1)
    assert ("protocols.default: protocol within_subject_kfold takes no option 'val_subjects', "
            "'min_val_subjects'") in err
    assert "it takes n_splits, by, val_groups, val_fraction, seed" in err

    from omegaconf import OmegaConf

    from brainfm.configuration import compose_config
    from brainfm.validate import bench_problems

    cfg = compose_config(["experiment=bench_cpu", "report_dir=.", "datasets=[eegmat]",
                          "protocols.default.name=within_subject_kfold",
                          "protocols.default.val_subjects=null",
                          "protocols.default.min_val_subjects=null"], config_name="bench")
    assert bench_problems(OmegaConf.to_container(cfg, resolve=True), tmp_path) == []


def test_the_pretrained_blocks_configuration_is_checked_before_pretraining(tmp_path):
    """The brainfm-pretrain configuration the pretrained block would run is composed and
    checked first: a typo in its overrides is not found after the stores are prepared."""
    err = _refused_before_any_work(_bench(tmp_path, "experiment=bench_quick",
                                          "pretrained.overrides=['trainer.max_stepz=3']"),
                                   tmp_path, 1)
    assert "pretrained.overrides: Could not override 'trainer.max_stepz'" in err


@pytest.mark.parametrize("tool, args, shown", [
    ("brainfm-bench", ["experiment=bench_demo", "checkpoint=x", "name=../../x"],
     "name='../../x' cannot name a folder"),
    ("brainfm-pretrain", ["name=../.."], "name='../..' cannot name a folder"),
    ("brainfm-prep", ["dataset=eegmat_sample", "dataset.name=../evil"],
     "dataset.name='../evil' cannot name a folder"),
])
def test_run_and_result_names_are_one_folder_name(tmp_path, tool, args, shown):
    """A name with separators is refused before Hydra makes the run folder: nothing is
    written, inside the working folder or above it."""
    cwd = tmp_path / "a" / "b"
    cwd.mkdir(parents=True)
    out = run_tool(tool, f"store_root={cwd}/stores", *args, cwd=cwd)
    assert out.returncode != 0
    assert f"{tool}: {shown}" in out.stderr and "nothing was run" in out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    assert [p for p in tmp_path.rglob("*")] == [tmp_path / "a", cwd]


def test_bench_name_is_checked_with_an_explicit_run_folder(tmp_path):
    """With hydra.run.dir given, the run folder is safe but results/<name> is not."""
    out = _bench(tmp_path, "experiment=bench_demo", "checkpoint=x", "name=../x",
                 "results_dir=results/${name}")
    err = _refused_before_any_work(out, tmp_path, 2)
    assert "name='../x' cannot name a folder" in err
    assert not (tmp_path.parent / "x").exists()


def test_dropping_an_inherited_pipeline_with_null(tmp_path, sample_store_root):
    """`pipelines: {name: null}` in an experiment file drops what it inherits (Hydra's usual
    way), so bench_demo's classical baselines run without a checkpoint."""
    configs = user_experiment(
        tmp_path, "classical_only", "defaults:\n  - bench_demo\n  - _self_\n"
        "name: classical_only\nmax_folds: 1\npipelines:\n  fb_ts_lr: null\n"
        "  criss_cross_probe: null\n  criss_cross_probe_random: null\n"
        "  criss_cross_finetune: null\n")
    out = run_tool("brainfm-bench", "--config-dir", configs,
                   "experiment=classical_only", f"store_root={sample_store_root}",
                   f"results_dir={tmp_path}/results", f"hydra.run.dir={tmp_path}/run",
                   "progress=false", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "1 cells computed" in out.stdout
    import pandas as pd

    table = pd.read_csv(tmp_path / "run" / "results.csv")
    assert set(table["pipeline"]) == {"csp_lda"}


def test_unexpected_errors_are_one_line_and_the_log(tmp_path):
    """An error no check foresaw (here: the store root is a file) is printed as one line
    with the log's path; the traceback goes to the log, and to the console with debug=true."""
    (tmp_path / "afile").write_text("not a folder")
    args = ["dataset=eegmat_sample", f"store_root={tmp_path}/afile",
            f"hydra.run.dir={tmp_path}/run"]
    out = run_tool("brainfm-prep", *args, cwd=tmp_path)
    assert out.returncode != 0 and "Traceback" not in out.stderr + out.stdout
    assert "brainfm-prep: NotADirectoryError:" in out.stderr
    assert f"log: {tmp_path}/run/brainfm-prep.log" in out.stderr
    assert "Traceback" in (tmp_path / "run" / "brainfm-prep.log").read_text()
    debug = run_tool("brainfm-prep", *args, "debug=true", cwd=tmp_path)
    assert debug.returncode != 0 and "Traceback" in debug.stderr

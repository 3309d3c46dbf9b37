"""Entry points as a user meets them: --help says what each does, and --config-dir brings a
user's own dataset and experiment files to brainfm-bench (validation included)."""
import pytest

from ..helpers import run_tool

HYDRA_APPS = {"brainfm-prep": "corpus store", "brainfm-pretrain": "pretraining",
              "brainfm-bench": "benchmark"}


@pytest.mark.parametrize("app", sorted(HYDRA_APPS))
def test_hydra_help_is_the_apps_own(app, tmp_path):
    done = run_tool(app, "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{app}: ") and HYDRA_APPS[app] in done.stdout.splitlines()[0]
    assert "--config-dir" in done.stdout and "== Configuration groups" in done.stdout
    assert "dataset: " in done.stdout and "eegmat_sample" in done.stdout
    assert "Powered by Hydra" not in done.stdout


@pytest.mark.parametrize("app", ["brainfm-demo", "brainfm-export", "brainfm-embed"])
def test_argparse_help(app, tmp_path):
    done = run_tool(app, "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert app in done.stdout and len(done.stdout.splitlines()) > 8


def test_bench_with_a_users_config_dir(tmp_path):
    """A dataset and an experiment that exist only in the user's folder: validation knows
    them, the store is prepared, the cells are computed, the summary says where things are."""
    user = tmp_path / "my_configs"
    (user / "dataset").mkdir(parents=True)
    (user / "experiment").mkdir()
    (user / "dataset" / "three_subjects.yaml").write_text(
        "defaults:\n  - eegmat_sample\n  - _self_\nname: three_subjects\n"
        "include: ['Subject00_*.edf', 'Subject01_*.edf', 'Subject02_*.edf']\n")
    (user / "experiment" / "my_bench.yaml").write_text(
        "# @package _global_\nname: my_bench\ndatasets: [three_subjects]\n"
        "protocols:\n  default: {name: loso}\n"
        "pipelines:\n  csp_lda: {kind: classical, baseline: csp_lda}\n")
    run = tmp_path / "run"
    done = run_tool("brainfm-bench", "--config-dir", user, "experiment=my_bench",
                    f"store_root={tmp_path / 'stores'}", f"results_dir={tmp_path / 'cells'}",
                    f"hydra.run.dir={run}", "progress=false", cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "three_subjects" in done.stdout and "csp_lda" in done.stdout
    assert "3 cells computed" in done.stdout, done.stdout[-1500:]
    assert f"log: {run / 'brainfm-bench.log'}" in done.stdout
    assert (run / "results.csv").exists() and (run / "summary.md").exists()
    assert "[INFO]" not in done.stdout + done.stderr


def test_unknown_dataset_is_refused_with_the_known_ones(tmp_path):
    done = run_tool("brainfm-bench", "experiment=bench_demo", "checkpoint=none",
                    "datasets=[no_such_set]", f"store_root={tmp_path}",
                    f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert done.returncode != 0
    assert "unknown dataset 'no_such_set'" in done.stdout + done.stderr
    assert "eegmat_sample" in done.stdout + done.stderr   # the known names are listed

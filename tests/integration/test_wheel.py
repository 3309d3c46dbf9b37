"""The built wheel works outside the checkout: configs from the package, a user's configs from
--config-dir, entry points with real help, and a real brainfm-prep run from another folder.

The wheel is built from a copy of the sources in a temporary folder (so the checkout gets no
build/ or egg-info), offline, and installed without dependencies into a fresh venv; that venv
sees the dependencies of the project's venv through a .pth line (a .pth file in a folder that
a .pth line adds is not processed, so the editable brainfm stays out of reach) and the test
asserts that ``brainfm`` is imported from the fresh venv's own site-packages.
"""
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from brainfm.paths import source_checkout

CHECKOUT = source_checkout()
pytestmark = pytest.mark.skipif(CHECKOUT is None, reason="needs the source checkout")


def _run(cmd, cwd, env=None, timeout=300):
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, f"{cmd}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(CHECKOUT / name, src / name)
    shutil.copytree(CHECKOUT / "brainfm", src / "brainfm",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    wheels = tmp / "wheels"
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
          "--quiet", "-w", wheels, src], cwd=tmp, env=env)
    (wheel,) = wheels.glob("brainfm-*.whl")
    venv_dir = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv_dir], cwd=tmp)
    python = venv_dir / "bin" / "python"
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     cwd=tmp).stdout.strip())
    (site / "project_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--quiet",
          wheel], cwd=tmp, env=env)
    outside = tmp / "elsewhere"   # neither the checkout nor the build folder
    outside.mkdir()
    return {"bin": venv_dir / "bin", "site": site, "cwd": outside, "wheel": wheel, "env": env}


def test_wheel_has_configs_and_sample(venv):
    import zipfile

    names = zipfile.ZipFile(venv["wheel"]).namelist()
    for needed in ("brainfm/conf/prep.yaml", "brainfm/conf/dataset/eegmat_sample.yaml",
                   "brainfm/conf/hydra/job_logging/brainfm.yaml",
                   "brainfm/sample_data/ATTRIBUTION.md"):
        assert needed in names, f"{needed} missing from {venv['wheel'].name}"
    assert any(n.startswith("brainfm/sample_data/eegmat/") and n.endswith(".edf")
               for n in names)


def test_installed_brainfm_is_the_wheel(venv):
    done = _run([venv["bin"] / "python", "-c",
                 "import brainfm, brainfm.configuration as c, brainfm.paths as p; "
                 "print(brainfm.__file__); print(c.conf_dir()); print(p.source_checkout())"],
                cwd=venv["cwd"])
    module, conf, checkout = done.stdout.split("\n")[:3]
    assert Path(module).is_relative_to(venv["site"]), module
    assert Path(conf).is_relative_to(venv["site"]), conf
    assert checkout == "None"


@pytest.mark.parametrize("command", ["brainfm-prep", "brainfm-pretrain", "brainfm-bench",
                                     "brainfm-demo", "brainfm-export", "brainfm-embed"])
def test_entry_point_help(venv, command):
    done = _run([venv["bin"] / command, "--help"], cwd=venv["cwd"], timeout=120)
    first = done.stdout.strip().splitlines()[0]
    assert "powered by Hydra" not in done.stdout
    assert len(done.stdout) > 200 and ("brainfm" in first or "usage" in first), done.stdout


def test_prep_from_another_folder_with_a_user_config(venv, tmp_path):
    """A user's dataset yaml in --config-dir builds on a packaged one; the store, the log and
    the summary land where they were asked to, and the console carries no duplicated lines."""
    user = tmp_path / "my_configs" / "dataset"
    user.mkdir(parents=True)
    (user / "my_sample.yaml").write_text(
        "defaults:\n  - eegmat_sample\n  - _self_\nname: my_sample\n"
        "include: ['Subject00_*.edf', 'Subject01_*.edf']\n")
    store_root, run_dir = tmp_path / "stores", tmp_path / "run"
    done = _run([venv["bin"] / "brainfm-prep", "--config-dir", tmp_path / "my_configs",
                 "dataset=my_sample", f"store_root={store_root}", f"hydra.run.dir={run_dir}",
                 "n_jobs=1", "progress=false"], cwd=venv["cwd"])
    assert (store_root / "my_sample" / "windows.parquet").exists()
    assert "recordings: 4 done" in done.stdout, done.stdout
    assert f"log: {run_dir / 'brainfm-prep.log'}" in done.stdout
    assert (run_dir / "brainfm-prep.log").exists()
    lines = [ln for ln in (done.stdout + done.stderr).splitlines() if ln.strip()]
    assert len(lines) == len(set(lines)), "duplicated console lines:\n" + "\n".join(lines)
    assert not any("[INFO]" in ln or "Tip" in ln for ln in lines), lines
    assert not list(venv["cwd"].iterdir()), "the run wrote into the working directory"

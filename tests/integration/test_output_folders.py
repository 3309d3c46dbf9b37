"""brainfm-embed and brainfm-export write only into new or empty folders or their own earlier
outputs (issue 19's attacks, as real commands on the embedded sample): never into a store,
over a user's files, over a file, from an empty input; a kill -9 between the output's writes
leaves the old output whole; a damaged last.ckpt is not exported."""
from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from brainfm.outputs import MARKER
from brainfm.paths import sample_root

from ..helpers import damage_archive, run_tool
from .test_embed_command import checkpoint  # noqa: F401 (a fixture)

pytestmark = pytest.mark.real_data

SAMPLE = sample_root() / "eegmat"
ONE_SUBJECT = ["Subject00_1.edf", "Subject00_2.edf"]


@pytest.fixture
def recordings(tmp_path):
    """One subject's two recordings of the sample (links), to keep each embedding short."""
    folder = tmp_path / "recordings"
    folder.mkdir()
    for name in ONE_SUBJECT:
        (folder / name).symlink_to(SAMPLE / name)
    return folder


def _tree(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _embed(*args):
    return run_tool("brainfm-embed", *args, "progress=false")


def test_embed_into_a_store_is_refused_and_the_store_still_reads(checkpoint, sample_store_root):
    store = sample_store_root / "eegmat_sample"
    before = _tree(store)
    done = _embed(f"checkpoint={checkpoint}", f"input={store}", f"out={store}")
    assert done.returncode == 2, done.stderr
    assert f"out={store} is the brainfm store {store.resolve()}" in done.stderr
    assert "Traceback" not in done.stderr
    assert _tree(store) == before
    inside = _embed(f"checkpoint={checkpoint}", f"input={store}", f"out={store / 'emb'}")
    assert inside.returncode == 2 and "is inside the brainfm store" in inside.stderr
    assert not (store / "emb").exists()


def test_embed_over_user_files_is_refused_then_keeps_them_with_overwrite(checkpoint,
                                                                         recordings,
                                                                         tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "windows.npy").write_bytes(b"the user's own array")
    (out / "embed.json").write_text('{"mine": true}')
    before = _tree(out)
    done = _embed(f"checkpoint={checkpoint}", f"input={recordings}", f"out={out}")
    assert done.returncode == 2
    assert "holds files brainfm-embed did not write (embed.json, windows.npy)" in done.stderr
    assert _tree(out) == before
    (out / "embed.json").unlink()
    (out / "notes.txt").write_text("keep me")
    again = _embed(f"checkpoint={checkpoint}", f"input={recordings}", f"out={out}",
                   "overwrite=true")
    assert again.returncode == 0, again.stderr
    assert (out / "notes.txt").read_text() == "keep me"  # foreign files stay
    assert np.load(out / "windows.npy").shape == (24, 16)  # brainfm-embed's name: replaced
    assert json.loads((out / MARKER).read_text())["command"] == "brainfm-embed"


def test_embed_out_an_existing_file_is_refused_before_any_work(checkpoint, tmp_path):
    target = tmp_path / "result.txt"
    target.write_text("mine")
    done = _embed(f"checkpoint={checkpoint}", f"input={SAMPLE}", f"out={target}")
    assert done.returncode == 2 and f"out={target} is a file" in done.stderr
    assert "Traceback" not in done.stderr and target.read_text() == "mine"


def test_embed_empty_input_is_refused(checkpoint, tmp_path):
    for args in ([f"checkpoint={checkpoint}", "input=", f"out={tmp_path / 'e'}"],
                 [f"checkpoint={checkpoint}", "input= ", f"out={tmp_path / 'e'}"]):
        done = _embed(*args)
        assert done.returncode == 2 and "input= is empty" in done.stderr
    from brainfm.embed import embed_dataset
    from brainfm.errors import BrainfmError

    with pytest.raises(BrainfmError, match="input= is empty"):
        embed_dataset(checkpoint, "", progress=False)
    assert not (tmp_path / "e").exists()


def test_embed_into_the_recordings_or_a_run_folder_is_refused(checkpoint, recordings,
                                                              tmp_path):
    done = _embed(f"checkpoint={checkpoint}", f"input={recordings}", f"out={SAMPLE / 'emb'}")
    assert done.returncode == 2 and "lies inside the recordings" in done.stderr
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"x")
    done = _embed(f"checkpoint={checkpoint}", f"input={recordings}", f"out={run}")
    assert done.returncode == 2 and "is a pretraining run folder" in done.stderr


def test_embed_again_replaces_its_own_output_whole(checkpoint, recordings, tmp_path):
    out = tmp_path / "emb"
    assert _embed(f"checkpoint={checkpoint}", f"input={recordings}", f"out={out}"
                  ).returncode == 0
    first = _tree(out)
    (recordings / ONE_SUBJECT[1]).unlink()
    assert _embed(f"checkpoint={checkpoint}", f"input={recordings}", f"out={out}"
                  ).returncode == 0
    assert len(np.load(io.BytesIO(first["windows.npy"]))) == 24
    assert len(np.load(out / "windows.npy")) == 12
    assert sorted(p.name for p in tmp_path.iterdir()) == ["emb", "recordings"]  # no leftovers


KILL_AFTER_FIRST_WRITE = textwrap.dedent("""
    import os, signal, sys
    import brainfm.data.store as store
    real = store.atomic_write_parquet
    def write_then_die(path, frame):
        real(path, frame)
        os.kill(os.getpid(), signal.SIGKILL)   # kill -9 between the output's writes
    store.atomic_write_parquet = write_then_die
    from brainfm.embed.command import main
    sys.exit(main(sys.argv[1:]))
""")


def test_kill_between_writes_leaves_the_old_output_whole(checkpoint, recordings, tmp_path):
    out = tmp_path / "emb"
    assert _embed(f"checkpoint={checkpoint}", f"input={recordings}", f"out={out}"
                  ).returncode == 0
    old = _tree(out)
    (recordings / ONE_SUBJECT[1]).unlink()  # the new output would have half the rows
    killed = subprocess.run([sys.executable, "-c", KILL_AFTER_FIRST_WRITE,
                             f"checkpoint={checkpoint}", f"input={recordings}", f"out={out}",
                             "progress=false"], capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9
    assert _tree(out) == old  # the old output, every file of it, and nothing else
    partial = [p for p in tmp_path.iterdir() if p.name.startswith(".emb.")]
    assert len(partial) == 1  # the killed run's temporary folder, marked unfinished
    assert _embed(f"checkpoint={checkpoint}", f"input={recordings}", f"out={out}"
                  ).returncode == 0
    assert not partial[0].exists()  # the next run removes it
    assert len(np.load(out / "windows.npy")) == 12


def test_export_over_user_files_is_refused(checkpoint, tmp_path):
    out = tmp_path / "dest"
    out.mkdir()
    (out / "README.md").write_text("my project")
    (out / "config.json").write_text('{"mine": 1}')
    before = _tree(out)
    done = run_tool("brainfm-export", checkpoint, out)
    assert done.returncode == 2 and "holds files brainfm-export did not write (README.md, " \
                                    "config.json)" in done.stderr
    assert _tree(out) == before
    into_own = run_tool("brainfm-export", checkpoint, tmp_path / "again")
    assert into_own.returncode == 0, into_own.stderr
    assert run_tool("brainfm-export", checkpoint, tmp_path / "again").returncode == 0


def _lightning_checkpoint(run: Path) -> Path:
    """A Lightning checkpoint as brainfm-pretrain writes it (a zip archive), in a run
    folder with its model file."""
    import lightning as L

    from brainfm.hub.folder import save_pretrained
    from brainfm.tasks.pretrain import MaskedPatchPretraining

    cfg = dict(d_model=16, n_layers=1, n_heads=2, d_ff=32, patch_len=200)
    task = MaskedPatchPretraining(model=cfg)
    path = run / "checkpoints" / "last.ckpt"
    path.parent.mkdir(parents=True)
    torch.save({"state_dict": task.state_dict(), "hyper_parameters": dict(task.hparams),
                "global_step": 3, "pytorch-lightning_version": L.__version__}, path)
    save_pretrained(task.model, run / "checkpoint", datasets=["eegmat_sample"])
    return path


def test_export_of_a_damaged_last_ckpt_is_refused(tmp_path):
    ckpt = _lightning_checkpoint(tmp_path / "run")
    assert run_tool("brainfm-export", ckpt, tmp_path / "good").returncode == 0
    damage_archive(ckpt)  # one bit of one weight, inside the archive
    done = run_tool("brainfm-export", ckpt, tmp_path / "bad")
    assert done.returncode == 2, done.stdout
    assert f"{ckpt}: damaged: its archive member" in done.stderr
    assert "fails its own CRC check" in done.stderr and not (tmp_path / "bad").exists()

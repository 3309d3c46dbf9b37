"""Checkpoint folders: save/load for both families and every input format, the contract in
config.json, refusal of tampered and truncated files, CBraMod write-back, brainfm-export."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import brainfm
from brainfm.checkpoint import CheckpointError, from_pretrained, save_model
from brainfm.hub.cbramod import save_cbramod, to_cbramod_state_dict
from brainfm.hub.export import main as export_main
from brainfm.hub.folder import sha256_of
from brainfm.models.criss_cross import CrissCrossTransformer
from brainfm.models.diffusion_denoiser import DiffusionDenoiser

from ..helpers import same_weights

DATA = Path(__file__).resolve().parents[1] / "data"
CBRAMOD = DATA / "cbramod_1layer_state_dict.pth"
EEGDM = DATA / "eegdm_2block_state_dict.pth"

STD = {"sfreq": 200.0, "l_freq": 0.3, "h_freq": 75.0, "notch": 50.0,
       "scale": {"eeg": 100.0}, "reference": "none"}
METADATA = dict(datasets=["eegmat"], standardise=STD, sfreq=200.0, window_s=5.0,
                sensor_types=["eeg"], channels=["Fp1", "Fp2", "Cz", "O1"], hours=1.24,
                recording_ids=["b1", "a2"],
                training={"objective": "masked_patch", "steps": 7, "heldout": {
                    "eegmat": {"model_vs_zero": 0.5, "spatial_vs_zero": 0.6,
                               "temporal_vs_zero": 1.4, "best_trivial": "spatial",
                               "model_vs_best_trivial": 0.83, "multichannel": True}}})


def _tiny(positional="sensor", **kw):
    torch.manual_seed(0)
    return CrissCrossTransformer(d_model=16, n_layers=1, n_heads=2, d_ff=32, dropout=0.0,
                                 positional=positional, **kw).eval()


def _inputs(c=4, n=3):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, c, n, 200, generator=g)
    sensors = torch.zeros(2, c, 8)
    sensors[..., :3] = torch.randn(2, c, 3, generator=g)
    sensors[..., 6], sensors[..., 7] = 1.0, 1.0
    return x, sensors


@pytest.fixture
def folder(tmp_path):
    path = tmp_path / "ck"
    brainfm.save_pretrained(_tiny("acpe"), path, **METADATA)
    return path


def test_folder_has_the_hub_layout_and_the_contract(folder):
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json",
                                                         "model.safetensors"]
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["family"] == "criss_cross" and cfg["architecture"]["positional"] == "acpe"
    c = cfg["contract"]
    assert c["sfreq"] == 200.0 and c["patch_len"] == 200 and c["window_s"] == 5.0
    assert c["units"]["eeg"] == "100 uV" and c["reference"] == "none"
    assert c["filters"]["l_freq"] == 0.3 and c["notch"]["freq"] == 50.0
    assert c["channel_encoding"] == "channel_order" and c["channels"] == METADATA["channels"]
    assert c["sensor_types"] == ["eeg"]
    assert cfg["corpus"]["hours"] == 1.24 and cfg["corpus"]["n_recordings"] == 2
    assert len(cfg["corpus"]["recording_ids_sha256"]) == 64
    assert cfg["objective"] == "masked_patch" and cfg["steps"] == 7
    assert cfg["heldout"]["eegmat"]["model_vs_best_trivial"] == 0.83
    assert cfg["brainfm_version"] == brainfm.__version__
    assert cfg["weights"]["sha256"] == sha256_of(folder / "model.safetensors")
    card = (folder / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: brainfm")
    for text in ("## Data contract", "100 uV", "Fp1, Fp2, Cz, O1", "| eegmat | 0.5 |",
                 "ODC-By", "brainfm.from_pretrained"):
        assert text in card


def test_folder_round_trip_keeps_weights_outputs_and_metadata(folder):
    model = from_pretrained(folder)
    assert same_weights(model, _tiny("acpe"))
    x, _ = _inputs()
    assert torch.equal(model.eval()(x), _tiny("acpe")(x))
    assert model.extra["datasets"] == ["eegmat"] and model.extra["recording_ids"] == ["a2", "b1"]
    assert model.contract["channels"] == METADATA["channels"]
    # saved again from the loaded model: the same contract without restating it
    again = brainfm.save_pretrained(model, folder.parent / "again")
    assert json.loads((again / "config.json").read_text())["contract"] == model.contract


def test_loads_in_a_fresh_process_from_the_folder_alone(folder, tmp_path):
    x, _ = _inputs()
    torch.save(x, tmp_path / "x.pt")
    code = ("import sys, torch, brainfm; m = brainfm.from_pretrained(sys.argv[1]).eval(); "
            "torch.save(m(torch.load(sys.argv[2])), sys.argv[3])")
    moved = tmp_path / "elsewhere"
    folder.rename(moved)
    done = subprocess.run([sys.executable, "-c", code, str(moved), str(tmp_path / "x.pt"),
                           str(tmp_path / "y.pt")], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert torch.equal(torch.load(tmp_path / "y.pt"), _tiny("acpe")(x))


def test_diffusion_family_round_trip(tmp_path):
    torch.manual_seed(0)
    model = DiffusionDenoiser(d_model=8, d_state=8, n_layers=2, d_cond=16,
                              d_time_embed=8).eval()
    brainfm.save_pretrained(model, tmp_path / "dm", **METADATA)
    back = from_pretrained(tmp_path / "dm")
    assert type(back) is DiffusionDenoiser and same_weights(model, back)
    assert back.contract["channel_encoding"] == "sensor"
    x, sensors = _inputs(n=2)
    t = torch.tensor([3, 7])
    assert torch.equal(back(x, t, sensors), model(x, t, sensors))


def test_tampered_weights_are_refused_naming_the_file(folder):
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0x01  # one bit of one weight
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=rf"{weights}: sha256 .* does not match .*"
                                              "tampered or damaged"):
        from_pretrained(folder)


def test_the_weights_loaded_are_the_bytes_verified(folder, monkeypatch):
    """model.safetensors replaced right after its hash was checked: what loads is what was
    verified (the file is read once), not the replacement."""
    import hashlib

    from brainfm.hub import folder as hub_folder

    weights = folder / "model.safetensors"
    swapped = bytearray(weights.read_bytes())
    swapped[-5] ^= 0x01  # one bit of one weight, same layout

    class SwapAfterHashing:
        """hashlib for hub.folder whose digests swap the file once they are taken."""

        def sha256(self, *data):
            real = hashlib.sha256(*data)

            class Digest:
                def update(self, block):
                    real.update(block)

                def hexdigest(self):
                    weights.write_bytes(bytes(swapped))
                    return real.hexdigest()

            return Digest()

    monkeypatch.setattr(hub_folder, "hashlib", SwapAfterHashing())
    assert same_weights(from_pretrained(folder), _tiny("acpe"))
    assert weights.read_bytes() == bytes(swapped)  # the swap did happen


@pytest.mark.parametrize("keep", [4, 100, 0.5, 0.99])
def test_truncated_weights_say_truncated(folder, keep):
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[:keep if keep >= 1 else int(len(data) * keep)])
    with pytest.raises(CheckpointError, match=rf"{weights}: the file is truncated"):
        from_pretrained(folder)


def test_truncated_config_says_so(folder):
    cfg = folder / "config.json"
    cfg.write_text(cfg.read_text()[:200])
    with pytest.raises(CheckpointError, match=rf"{cfg}: not valid JSON.*truncated"):
        from_pretrained(folder)


def test_weights_file_or_config_path_load_the_folder(folder):
    a = from_pretrained(folder / "model.safetensors")
    b = from_pretrained(folder / "config.json")
    assert same_weights(a, b)


def test_lone_safetensors_without_config_is_refused(folder, tmp_path):
    lone = tmp_path / "lone.safetensors"
    lone.write_bytes((folder / "model.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match="without its config.json"):
        from_pretrained(lone)


def test_folder_with_other_files_is_not_overwritten(tmp_path):
    from brainfm.outputs import OutputFolderError

    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(OutputFolderError, match="holds files brainfm-export did not write "
                                                r"\(notes.txt\)"):
        brainfm.save_pretrained(_tiny(), tmp_path)


def test_old_model_file_loads_and_exports_to_a_folder(tmp_path):
    save_model(_tiny(), tmp_path / "model.pt", extra=METADATA)
    assert export_main([str(tmp_path / "model.pt"), str(tmp_path / "ck")]) == 0
    model = from_pretrained(tmp_path / "ck")
    assert same_weights(model, _tiny())
    assert model.contract["sensor_types"] == ["eeg"] and model.extra["training"]["steps"] == 7


def test_brainfm_lightning_checkpoint_loads_the_backbone(tmp_path):
    """A .ckpt as brainfm-pretrain's Lightning writes it: task weights under ``model.``, the
    backbone's arguments under hyper_parameters.model; the run's model.pt gives the contract."""
    model = _tiny()
    run = tmp_path / "run"
    arch = {k: v for k, v in model.config.items() if k not in ("head", "n_outputs")}
    ckpt = {"pytorch-lightning_version": "2.6.6", "global_step": 7, "epoch": 0,
            "state_dict": {**{f"model.{k}": v for k, v in model.state_dict().items()},
                           "trivial.scale": torch.ones(1)},
            "hyper_parameters": {"model": arch, "mask_ratio": 0.5, "lr": 1e-3},
            "optimizer_states": []}
    (run / "checkpoints").mkdir(parents=True)
    torch.save(ckpt, run / "checkpoints" / "last.ckpt")
    save_model(model, run / "model.pt", extra=METADATA)
    loaded = from_pretrained(run / "checkpoints" / "last.ckpt")
    assert same_weights(loaded, model) and loaded.extra["datasets"] == ["eegmat"]
    assert loaded.extra["training"]["steps"] == 7
    assert export_main([str(run), str(tmp_path / "ck")]) == 0  # a run folder: its last.ckpt
    assert same_weights(from_pretrained(tmp_path / "ck"), model)


def _bytes_read() -> int:
    """Bytes this process has read through read() calls so far (Linux /proc)."""
    with open("/proc/self/io") as fh:
        return int(next(line for line in fh if line.startswith("rchar")).split()[1])


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux /proc/self/io")
def test_run_metadata_reads_the_model_files_extra_not_its_weights(tmp_path):
    """A run's model.pt gives a .ckpt its data contract; only its small dict is read, not its
    weights (40 MB here), and still without unpickling code."""
    from brainfm.checkpoint import MODEL_FORMAT
    from brainfm.hub.lightning import run_metadata

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    torch.save({"format": MODEL_FORMAT, "family": "criss_cross", "config": {},
                "state_dict": {"w": torch.zeros(10_000_000)}, "extra": METADATA},
               run / "model.pt")
    before = _bytes_read()
    extra = run_metadata(run / "checkpoints" / "last.ckpt", {}, 7, "masked_patch")
    assert _bytes_read() - before < 1_000_000
    assert extra["datasets"] == ["eegmat"] and extra["channels"] == METADATA["channels"]
    assert extra["training"] == {"objective": "masked_patch", "steps": 7}


def test_run_metadata_never_runs_code_in_a_model_file(tmp_path, capfd):
    from brainfm.checkpoint import MODEL_FORMAT
    from brainfm.hub.lightning import run_metadata

    class Boom:
        def __reduce__(self):
            return (print, ("pwned",))

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    torch.save({"format": MODEL_FORMAT, "extra": {"datasets": Boom()}}, run / "model.pt")
    with pytest.warns(RuntimeWarning, match="default data contract, unverified"):
        extra = run_metadata(run / "checkpoints" / "last.ckpt", {}, 7, "masked_patch")
    assert "datasets" not in extra and "pwned" not in capfd.readouterr().out


def test_cbramod_round_trip_brainfm_to_original_layout_and_back(tmp_path):
    """Original weights -> brainfm -> the original layout: the same tensors under the same
    names; loaded again, the original's recorded outputs."""
    original = torch.load(CBRAMOD, weights_only=True)
    model = from_pretrained(CBRAMOD).eval()
    written = to_cbramod_state_dict(model)
    assert written.keys() == original.keys()
    assert all(torch.equal(written[k], original[k]) for k in original)
    brainfm.save_pretrained(model, tmp_path / "ck")
    assert export_main([str(tmp_path / "ck"), str(tmp_path / "back.pth"),
                        "--format", "cbramod"]) == 0
    back = from_pretrained(tmp_path / "back.pth").eval()
    io = torch.load(DATA / "cbramod_1layer_io.pt", weights_only=True)
    assert torch.equal(back(io["x"]), model(io["x"]))
    assert (back(io["x"]) - io["y"]).abs().max() < 1e-5


def test_cbramod_write_back_refuses_other_architectures(tmp_path):
    with pytest.raises(CheckpointError, match="positional='sensor' .*CBraMod: 'acpe'"):
        save_cbramod(_tiny(), tmp_path / "x.pth")
    assert not (tmp_path / "x.pth").exists()


def test_eegdm_state_dict_exports_and_loads(tmp_path):
    original = from_pretrained(EEGDM)
    assert export_main([str(EEGDM), str(tmp_path / "ck")]) == 0
    back = from_pretrained(tmp_path / "ck")
    assert type(back) is DiffusionDenoiser and same_weights(back, original)
    assert json.loads((tmp_path / "ck" / "config.json").read_text())["source_format"] == "eegdm"


def test_pickled_code_in_a_lightning_file_never_runs(tmp_path):
    class Boom:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "last.ckpt"
    torch.save({"pytorch-lightning_version": "2", "state_dict": {}, "x": Boom()}, path)
    with pytest.raises(CheckpointError, match="not a tensor-only checkpoint"):
        from_pretrained(path)


def test_export_help_says_what_it_does(capsys):
    with pytest.raises(SystemExit) as done:
        export_main(["--help"])
    assert done.value.code == 0
    assert "checkpoint folder in the Hugging Face hub layout" in capsys.readouterr().out


def test_export_of_a_missing_source_fails_clearly(tmp_path, capsys):
    assert export_main([str(tmp_path / "nope"), str(tmp_path / "out")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_benchmark_leakage_check_reads_a_folder(folder):
    """The benchmark refuses a checkpoint pretrained on the dataset it evaluates: the corpus
    in config.json must reach it as it did from model files."""
    from brainfm.bench.pretrained import check_pretraining_disjoint
    from brainfm.bench.protocols import LeakageError

    with pytest.raises(LeakageError, match="pretrained on 'eegmat'"):
        check_pretraining_disjoint(folder, "eegmat")
    assert check_pretraining_disjoint(folder, "muse_p300") == ["eegmat"]

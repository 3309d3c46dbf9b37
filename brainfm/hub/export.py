"""brainfm-export: a run's last.ckpt (or any model file brainfm loads) -> a checkpoint folder,
or -> the original CBraMod state-dict layout."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

DESCRIPTION = """\
Turn a pretraining run into a checkpoint folder in the Hugging Face hub layout
(model.safetensors, config.json with the architecture and data contract, README.md model
card) that brainfm.from_pretrained loads in any process from the folder alone.

SOURCE is a brainfm-pretrain run folder (its checkpoints/last.ckpt is used), a last.ckpt,
a checkpoint folder, an old brainfm model file (.pt, deprecated), or an original CBraMod or
EEGDM state dict. EMA weights the source keeps (a diffusion run's) are exported beside the
weights (ema.safetensors; brainfm.from_pretrained(OUT, weights="ema")). Nothing read runs pickled code. With --format cbramod the weights of a cbramod-config
model are written as the original CBraMod code's state dict (OUT is then a .pth file).
"""

EPILOG = """examples:
  brainfm-export runs/demo checkpoints/demo
  brainfm-export runs/demo/checkpoints/last.ckpt checkpoints/demo
  brainfm-export checkpoints/demo cbramod_weights.pth --format cbramod
"""


def resolve_source(source: Path) -> Path:
    """The file or folder to load for ``source`` (a run folder: its last.ckpt)."""
    from .folder import is_checkpoint_folder

    source = Path(source)
    if source.is_dir() and not is_checkpoint_folder(source):
        for candidate in (source / "checkpoints" / "last.ckpt", source / "checkpoint",
                          source / "model.pt"):
            if candidate.exists():
                return candidate
        raise FileNotFoundError(f"{source}: neither a checkpoint folder nor a run folder (no "
                                "checkpoints/last.ckpt, checkpoint/ or model.pt in it)")
    return source


def export(source, out, fmt: str = "brainfm", allow_nonfinite: bool = False,
           overwrite: bool = False) -> Path:
    """Write ``source`` (see :func:`resolve_source`) to ``out``; returns what was written.
    A checkpoint folder ``out`` is checked before anything is read (see
    :func:`brainfm.hub.folder.save_pretrained` for where it may be written)."""
    from ..checkpoint import from_pretrained, read_ema_state
    from ..outputs import claim_output_folder
    from .folder import checkpoint_folder_files, save_pretrained

    if fmt != "cbramod":
        claim_output_folder(out, "brainfm-export", overwrite, legacy=checkpoint_folder_files)
    source = resolve_source(Path(source))
    model = from_pretrained(source, allow_nonfinite=allow_nonfinite)
    if fmt == "cbramod":
        from .cbramod import save_cbramod

        return save_cbramod(model, out)
    ema = read_ema_state(source)   # kept beside the weights when the run kept an EMA
    return save_pretrained(model, out, overwrite=overwrite,
                           weights="model" if ema is None else "ema", ema=ema)


def summary(path: Path, fmt: str) -> str:
    if fmt == "cbramod":
        return (f"brainfm-export: wrote {path} (original CBraMod state-dict layout; load it "
                "with the original code's torch.load + load_state_dict, or brainfm."
                "from_pretrained)")
    from .folder import read_config

    cfg = read_config(path)
    c = cfg["contract"]
    how = ("any montage (sensor-encoded)" if c["channel_encoding"] == "sensor" else
           f"{len(c['channels'] or [])} channels in a fixed order")
    files = "model.safetensors" + (", ema.safetensors" if cfg["weights"].get("ema") else "")
    return (f"brainfm-export: wrote {path}/ ({files}, config.json, README.md)\n"
            f"  {cfg['family']}, {cfg['weights']['n_parameters']} parameters, "
            f"{cfg.get('objective') or 'unknown objective'}, {cfg.get('steps')} steps, "
            f"corpus {', '.join(cfg['corpus']['datasets']) or 'unknown'}\n"
            f"  contract: {c['sfreq']} Hz, {c['filters']['l_freq']}-{c['filters']['h_freq']} "
            f"Hz, notch {c['notch']['freq']}, {how}\n"
            f"  load it with brainfm.from_pretrained({str(path)!r})")


def main(argv=None) -> int:
    from ..errors import BrainfmError

    parser = argparse.ArgumentParser(prog="brainfm-export", description=DESCRIPTION,
                                     epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="run folder, last.ckpt, model file or checkpoint")
    parser.add_argument("out", help="the checkpoint folder to write (a .pth file with "
                        "--format cbramod)")
    parser.add_argument("--format", choices=("brainfm", "cbramod"), default="brainfm",
                        help="brainfm: checkpoint folder (default); cbramod: the original "
                        "CBraMod state dict")
    parser.add_argument("--allow-nonfinite", action="store_true",
                        help="export weights holding NaN/Inf (refused by default)")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into a folder holding other files too (they are kept; "
                        "only the checkpoint's own files there are replaced). Without it OUT "
                        "must be new, empty or an earlier checkpoint folder")
    args = parser.parse_args(argv)
    try:
        path = export(args.source, args.out, args.format, args.allow_nonfinite,
                      args.overwrite)
    except (BrainfmError, FileNotFoundError, ValueError) as err:
        print(f"brainfm-export: {err}", file=sys.stderr)
        return 2
    print(summary(Path(path), args.format))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

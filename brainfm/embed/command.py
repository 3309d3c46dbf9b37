"""brainfm-embed: embeddings of a recording, a folder of recordings or a prepared dataset,
from a checkpoint, as Parquet tables plus .npy arrays."""
from __future__ import annotations

import sys

HELP = """\
usage: brainfm-embed checkpoint=<folder|file> input=<file|folder|dataset> out=<dir> [key=value ...]

Per-window and per-recording embeddings from a brainfm checkpoint. Recording files are read
and brought to the checkpoint's data contract (rate, filters, units, channel set); a dataset
name reads its prepared store (brainfm-prep) under store_root.

keys:
  checkpoint=PATH          checkpoint folder, model file, run last.ckpt, CBraMod/EEGDM weights
  input=WHAT               a recording file, a folder of recordings, a store folder, or a
                           dataset name with a prepared store
  out=DIR                  writes windows.parquet + windows.npy (one row per window: id,
                           recording, dataset, subject, session, run, start_s, end_s, label,
                           label_name, annotations, max_abs; row id = row of the array),
                           recordings.parquet + recordings.npy (mean per recording), embed.json;
                           a new or empty folder, or an earlier brainfm-embed output (replaced
                           whole); never a store, a run folder or the recordings
  overwrite=false          true: write into a folder holding other files too (they are kept;
                           only brainfm-embed's own files there are replaced)
  batch_size=64            windows per forward pass
  device=auto              auto (GPU when present), cpu, cuda, cuda:1, ...
  progress=true            progress bar (false: none)
  store_root=stores        where dataset stores live (default $BRAINFM_STORE_ROOT or ./stores)
  allow_interpolation=false  interpolate channels a fixed-montage checkpoint needs and a
                           recording lacks (spherical splines) instead of refusing it
  window_s=                window length in seconds (default: the checkpoint's training window)

example:
  brainfm-embed checkpoint=runs/demo/checkpoint input=eegmat_sample out=embeddings/demo
"""

_TYPES = {"batch_size": int, "window_s": float}
_BOOLS = ("progress", "allow_interpolation", "overwrite")
_KEYS = ("checkpoint", "input", "out", "batch_size", "device", "progress", "store_root",
         "allow_interpolation", "window_s", "overwrite")
_REQUIRED = ("checkpoint", "input", "out")


def parse(argv) -> dict:
    args = {}
    for item in argv:
        key, eq, value = item.partition("=")
        if not eq or key not in _KEYS:
            raise ValueError(f"{item!r}: expected key=value with key one of {', '.join(_KEYS)}")
        if key in _BOOLS:
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(f"{key}={value!r}: use true or false")
            args[key] = value.lower() in ("true", "1", "yes")
        elif value in ("", "null", "None") and key in _TYPES:
            args[key] = None
        elif not value.strip() and key in _REQUIRED:
            raise ValueError(f"{key}= is empty: {key} needs a value (see brainfm-embed --help)")
        else:
            try:
                args[key] = _TYPES.get(key, str)(value)
            except ValueError:
                raise ValueError(f"{key}={value!r}: not a {_TYPES[key].__name__}") from None
    missing = [k for k in _REQUIRED if k not in args]
    if missing:
        raise ValueError(f"missing {', '.join(k + '=' for k in missing)}")
    return args


def main(argv=None) -> int:
    from ..errors import BrainfmError
    from .core import embed_dataset

    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or any(a in ("-h", "--help", "help") for a in argv):
        print(HELP)
        return 0
    try:
        args = parse(argv)
        result = embed_dataset(**args)
    except (BrainfmError, ValueError, FileNotFoundError) as err:
        print(f"brainfm-embed: {err}", file=sys.stderr)
        return 2
    info = result.info
    print(f"brainfm-embed: {info['n_windows']} windows of {info['n_recordings']} recording(s) "
          f"-> {info['dim']}-dim embeddings in {info['seconds']:.1f} s on {info['device']}\n"
          f"  {args['out']}/windows.parquet + windows.npy (per window), recordings.parquet + "
          f"recordings.npy (per recording), embed.json")
    for path, why in list(result.failures.items())[:10]:
        print(f"  FAILED {path}: {why}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

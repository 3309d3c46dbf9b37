"""Output folders that are brainfm's or new (brainfm-embed, brainfm-export, save_pretrained).

A command writes only into a folder that is new, empty, or holds a previous output of the
same command, recognised by the marker file the command leaves there (``.brainfm-output.json``:
which command, which files). Never into a store, a pretraining run folder or the recordings,
and never over someone else's files: a folder holding foreign files is refused unless
``overwrite=true``, which then replaces only the files the command itself wrote there.

The output is written into a temporary sibling folder and swapped into place in one rename,
so a kill at any instant leaves the old output or the new one, never a mix. (With
``overwrite=true`` over foreign files, which must stay, the files move in one by one: the
marker goes first and comes back last, so an unfinished mix is never marked as an output.)
"""
from __future__ import annotations

import ctypes
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .data.store import _umask, is_store
from .errors import BrainfmError
from .formats import MARKER
from .paths import data_root, sample_root
from .run_folder import run_outputs



class OutputFolderError(BrainfmError, ValueError):
    """brainfm will not write an output there; the message names the folder and why."""


def _read_marker(folder: Path) -> dict | None:
    try:
        marker = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) and isinstance(marker.get("files"), list) else None


def _protected(out: Path) -> str | None:
    """Why no command may write its output at ``out`` (a store, a run folder, the
    recordings), else None."""
    where = out.resolve()
    for data in (data_root(), sample_root()):
        if where == data or data in where.parents:
            return f"lies inside the recordings at {data}"
    for folder in (where, *where.parents):
        if is_store(folder):
            return f"is {'' if folder == where else 'inside '}the brainfm store {folder}"
    if where.is_dir() and run_outputs(where):
        return (f"is a pretraining run folder ({', '.join(run_outputs(where))}); a run "
                "keeps its own checkpoint in <run>/checkpoint")
    return None


def previous_output(out: Path, command: str, legacy=None) -> set[str] | None:
    """The files a previous run of ``command`` wrote in ``out`` (its marker's list, or what
    ``legacy(out)`` recognises in a folder written before markers existed), else None."""
    marker = _read_marker(out)
    if marker is not None:
        return set(map(str, marker["files"])) if marker.get("command") == command else None
    return legacy(out) if legacy is not None else None


def claim_output_folder(out, command: str, overwrite: bool = False, legacy=None) -> set[str]:
    """Check that ``command`` may write its output folder at ``out``; returns the names of
    the files of its previous output there (to be replaced), empty for a new folder.

    ``legacy(folder)``: the file names of an output ``command`` wrote before it left
    markers, or None when the folder holds none."""
    out = Path(out)
    what = f"{command}: out={out}"
    if out.exists() and not out.is_dir():
        raise OutputFolderError(f"{what} is a file; the output is a folder -> name a new "
                                "folder")
    why = _protected(out)
    if why:
        raise OutputFolderError(f"{what} {why}: brainfm writes outputs only into new folders or "
                                "its own earlier outputs -> choose another out=")
    if not out.is_dir():
        return set()
    ours = previous_output(out, command, legacy) or set()
    foreign = sorted(p.name for p in out.iterdir() if p.name not in ours and p.name != MARKER)
    if foreign and not overwrite:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise OutputFolderError(f"{what} holds files {command} did not write ({shown}): they "
                                "would be mixed with or replaced by its output -> choose a "
                                "new or empty folder, or pass overwrite=true to replace only "
                                f"what {command} wrote there and keep the rest")
    return ours & {p.name for p in out.iterdir()}


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where the system
    cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    done = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return done == 0


def _remove(folder: Path, names) -> None:
    for name in names:
        path = folder / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def _commit(tmp: Path, out: Path, ours: set[str]) -> None:
    """Put the finished output ``tmp`` at ``out``, removing the previous output ``ours``."""
    if not out.exists():
        os.rename(tmp, out)
        return
    rest = {p.name for p in out.iterdir()} - ours - {MARKER}
    if not rest:  # empty, or only the previous output: swap the two folders whole
        if _exchange(tmp, out):
            shutil.rmtree(tmp)
            return
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
        os.replace(out, old / out.name)
        os.rename(tmp, out)
        shutil.rmtree(old)
        return
    # overwrite=true beside foreign files, which stay: unmark, replace, mark again
    (out / MARKER).unlink(missing_ok=True)
    _remove(out, ours)
    for path in sorted(tmp.iterdir()):
        if path.name != MARKER:
            os.replace(path, out / path.name)
    if (tmp / MARKER).exists():
        os.replace(tmp / MARKER, out / MARKER)
    tmp.rmdir()


def _remove_stale_partials(out: Path, command: str) -> None:
    """Temporary siblings an interrupted run of ``command`` left (marked unfinished)."""
    if not out.parent.is_dir():
        return
    for path in out.parent.glob(f".{out.name}.*.partial"):
        marker = _read_marker(path) if path.is_dir() and not path.is_symlink() else None
        if marker and marker.get("command") == command and marker.get("complete") is False:
            shutil.rmtree(path, ignore_errors=True)


def _write_marker(folder: Path, command: str, complete: bool) -> None:
    files = sorted(p.name for p in folder.iterdir() if p.name != MARKER)
    (folder / MARKER).write_text(json.dumps({"command": command, "complete": complete,
                                             "files": files}, indent=1) + "\n")


@contextmanager
def output_folder(out, command: str, overwrite: bool = False, legacy=None,
                  marked: bool = True):
    """Yield a temporary folder to write ``command``'s output into; when the block ends
    without error, it replaces the output at ``out`` in one step (see the module text).
    The checks run on entry (before any work) and again before the swap. ``marked=False``:
    leave no marker file (an output that ``legacy`` recognises by its own files, such as a
    checkpoint folder by its config.json)."""

    out = Path(out)
    claim_output_folder(out, command, overwrite, legacy)
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(out, command)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp's 0700 would hide a shared output
    try:
        _write_marker(tmp, command, complete=False)
        yield tmp
        if marked:
            _write_marker(tmp, command, complete=True)
        else:
            (tmp / MARKER).unlink()
        _commit(tmp, out, claim_output_folder(out, command, overwrite, legacy))
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


__all__ = ["MARKER", "OutputFolderError", "claim_output_folder", "output_folder",
           "previous_output"]

"""The results store: one JSON file per finished cell, keyed by the hash of its full config.

A cell is (dataset, pipeline, protocol, seed, fold). Re-running an experiment skips every cell
whose key already has a file, so an interrupted benchmark resumes where it stopped and a
sweep that changes one setting recomputes only the cells that setting touches. A cell file
that does not parse (a disk filled up, a copy cut short), or that is not a valid cell (see
:mod:`brainfm.bench.cell_schema`: scores out of range, rows missing, a folder in its place),
is named in a warning, moved to ``cells/corrupt/`` and computed again.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import pandas as pd

from ..data.store import atomic_write_json, to_json
from .cell_schema import cell_problem


def cell_key(config: dict) -> str:
    return hashlib.sha1(to_json(config).encode()).hexdigest()[:20]


def file_digest(path) -> str:
    """Content hash of a file or a checkpoint folder (its files, by name): a re-made
    checkpoint makes new cells."""
    h = hashlib.sha1()
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            h.update(file.relative_to(path).as_posix().encode() + b"\0")
        with open(file, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:16]


class ResultsStore:
    def __init__(self, root):
        self.root = Path(root)
        (self.root / "cells").mkdir(parents=True, exist_ok=True)
        self._docs: dict[Path, dict] = {}  # cells read by has(), so frames() reads none twice
        self.set_aside: list[tuple[Path, Path]] = []   # (cell, where it went), this session

    def _path(self, key: str) -> Path:
        return self.root / "cells" / f"{key}.json"

    def has(self, key: str, config: dict | None = None, subjects=None) -> bool:
        """Whether a valid cell is stored under ``key`` (an invalid one is set aside).

        ``config``: the cell's config as the runner builds it, and ``subjects``: the fold's
        test subjects; the stored cell must be that cell and score each of them."""
        path = self._path(key)
        if not (path.exists() and self._read(path) is not None):
            return False
        bad = cell_problem(self._docs[path], config, subjects)
        if bad:
            self._docs.pop(path)
            self._set_aside(path, bad)
        return not bad

    def _read(self, path: Path) -> dict | None:
        """The cell at ``path`` when it parses and passes :func:`cell_problem` on its own."""
        if path in self._docs:
            return self._docs[path]
        if path.is_dir():
            self._set_aside(path, "a folder, not a cell file")
            return None
        try:
            doc = json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError) as err:
            self._set_aside(path, f"{type(err).__name__}: {err}")
            return None
        bad = cell_problem(doc)
        if bad:
            self._set_aside(path, bad)
            return None
        self._docs[path] = doc
        return doc

    def _set_aside(self, path: Path, why: str) -> None:
        corrupt = self.root / "cells" / "corrupt"
        corrupt.mkdir(exist_ok=True)
        n = 0
        while (dest := corrupt / f"{path.stem}.{n}.json").exists():
            n += 1
        os.replace(path, dest)
        self.set_aside.append((path, dest))
        warnings.warn(f"{path}: corrupt results cell ({why}); moved to {dest}; the cell will "
                      "be computed again", RuntimeWarning, stacklevel=3)

    def put(self, key: str, config: dict, rows: list[dict]) -> None:
        """``rows``: tidy records (one per subject x metric, plus the fold's pooled ones)."""
        atomic_write_json(self._path(key), {"config": config, "rows": rows})
        self._docs.pop(self._path(key), None)

    def _paths(self, keys):
        return (sorted((self.root / "cells").glob("*.json")) if keys is None
                else [self._path(k) for k in dict.fromkeys(keys)])

    def frames(self, keys=None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(table, cells) of ``keys`` (default: every stored cell), each file read once.

        table: the tidy rows (dataset, pipeline, protocol, fold, subject, seed, metric,
        value); cells: one row per cell with its dataset, pipeline, fold, seed and what its
        pipeline reported (``seconds``, ``epochs``, best validation score).
        """
        rows, cells = [], []
        for path in self._paths(keys):
            doc = self._read(path) if path.exists() else None
            if doc is None:
                continue
            rows.extend(doc["rows"])
            config = doc["config"]
            cells.append({k: config.get(k) for k in ("dataset", "pipeline", "fold", "seed")}
                         | dict(config.get("info") or {}))
        columns = ["dataset", "pipeline", "protocol", "fold", "subject", "seed", "metric",
                   "value"]
        table = pd.DataFrame(rows, columns=columns) if rows else pd.DataFrame(columns=columns)
        return table, pd.DataFrame(cells)

    def table(self, keys=None) -> pd.DataFrame:
        """The tidy rows of ``keys`` (see :meth:`frames`)."""
        return self.frames(keys)[0]

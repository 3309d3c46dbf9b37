"""The results store: one JSON file per finished cell, keyed by the hash of its full config.

A cell is (dataset, pipeline, protocol, seed, fold). Re-running an experiment skips every cell
whose key already has a file, so an interrupted benchmark resumes where it stopped and a
sweep that changes one setting recomputes only the cells that setting touches.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd

from ..data.store import atomic_write_json, to_json


def cell_key(config: dict) -> str:
    return hashlib.sha1(to_json(config).encode()).hexdigest()[:20]


def file_digest(path) -> str:
    """Content hash of a file (a checkpoint): a re-made checkpoint makes new cells."""
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


class ResultsStore:
    def __init__(self, root):
        self.root = Path(root)
        (self.root / "cells").mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / "cells" / f"{key}.json"

    def has(self, key: str) -> bool:
        return self._path(key).exists()

    def put(self, key: str, config: dict, rows: list[dict]) -> None:
        """``rows``: tidy records (one per subject x metric, plus the fold's pooled ones)."""
        atomic_write_json(self._path(key), {"config": config, "rows": rows})

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
            doc = json.loads(path.read_text())
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

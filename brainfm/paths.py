"""Where the shared recordings live, without hard-coding a path anywhere else."""
from __future__ import annotations

import os
from pathlib import Path

DATA_ROOT_ENV = "BRAINFM_DATA_ROOT"


def project_root() -> Path:
    """The source checkout (the folder holding pyproject.toml), or the working directory."""
    here = Path(__file__).resolve().parents[1]
    return here if (here / "pyproject.toml").exists() else Path.cwd()


def data_root(override: str | os.PathLike | None = None) -> Path:
    """Root of the real recordings: argument, else $BRAINFM_DATA_ROOT, else ../shared/data."""
    if override:
        return Path(override).expanduser().resolve()
    if os.environ.get(DATA_ROOT_ENV):
        return Path(os.environ[DATA_ROOT_ENV]).expanduser().resolve()
    return (project_root() / ".." / "shared" / "data").resolve()


def sample_root() -> Path:
    """The small real sample shipped inside the package for the quick-start."""
    return Path(__file__).resolve().parent / "sample_data"

"""Where the shared recordings live, without hard-coding a path anywhere else."""
from __future__ import annotations

import os
from pathlib import Path

DATA_ROOT_ENV = "BRAINFM_DATA_ROOT"


def source_checkout() -> Path | None:
    """The source checkout brainfm runs from (the folder holding pyproject.toml), or None
    when brainfm is installed as a package (site-packages has no pyproject.toml)."""
    here = Path(__file__).resolve().parents[1]
    return here if (here / "pyproject.toml").exists() else None


def project_root() -> Path:
    """The source checkout, or the working directory when brainfm is installed."""
    return source_checkout() or Path.cwd()


def data_root(override: str | os.PathLike | None = None) -> Path:
    """Root of the real recordings: argument, else $BRAINFM_DATA_ROOT, else ../shared/data
    beside a source checkout, else ./data in the working directory (an installed brainfm
    knows no data folder of its own; a dataset whose folder is missing names it and says
    to set ``data_root=`` or $BRAINFM_DATA_ROOT). Datasets with absolute paths, like the
    embedded ``eegmat_sample``, do not depend on it."""
    if override:
        return Path(override).expanduser().resolve()
    if os.environ.get(DATA_ROOT_ENV):
        return Path(os.environ[DATA_ROOT_ENV]).expanduser().resolve()
    checkout = source_checkout()
    if checkout is not None:
        return (checkout / ".." / "shared" / "data").resolve()
    return (Path.cwd() / "data").resolve()


def sample_root() -> Path:
    """The small real sample shipped inside the package for the quick-start."""
    return Path(__file__).resolve().parent / "sample_data"

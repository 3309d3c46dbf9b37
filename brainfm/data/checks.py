"""Checks of a dataset spec and of the recordings it finds, made before any file is read
or written: brainfm-prep's and the whole-config validation's (brainfm.validate) alike.
"""
from __future__ import annotations

import re
from pathlib import Path

from ..errors import raise_problems
from .store import StoreError, check_store_name


def name_problem(name, what: str) -> str | None:
    """Why ``name`` cannot be a folder name (``what`` is the key it came from), else None."""
    try:
        check_store_name(name, what)
    except StoreError as err:
        return str(err)
    return None


def dataset_problems(spec) -> list[str]:
    """Problems a dataset spec has on its own (before any file is read)."""
    out = [p for p in [name_problem(spec.name, "dataset.name")] if p]
    if spec.labels.source == "events" and spec.windows.kind == "fixed":
        out.append(f"dataset {spec.name!r}: labels.source=events with windows.kind=fixed "
                   "leaves every window unlabelled -> use windows.kind=events (trials around "
                   "the events) or labels.source=path/none")
    return out


def check_listing(spec, items, base: Path) -> None:
    """The recordings a spec found: none at all, or a ``path_regex`` that matches none of
    them (so no subject, session or label would be read), is a configuration error."""
    problems = []
    if not items:
        problems.append(f"dataset {spec.name!r}: no recording under {base} matches "
                        f"include={spec.include} (exclude={spec.exclude}) -> check "
                        "dataset.path and dataset.include")
    elif spec.path_regex and not any(re.search(spec.path_regex, it.relpath) for it in items):
        problems.append(f"dataset {spec.name!r}: path_regex {spec.path_regex!r} matches none "
                        f"of its {len(items)} recordings (e.g. {items[0].relpath!r}), so no "
                        "subject/session/label would be read -> fix dataset.path_regex")
    raise_problems(f"dataset {spec.name}", problems)


__all__ = ["check_listing", "dataset_problems", "name_problem"]

"""What a stored results cell must hold before its rows are counted.

A cell file that parses is not yet a result: ``{"config": {}, "rows": []}`` used to count
as done (the table then lacked the fold), a balanced accuracy of 7.5 went into the means,
and rows that are not records ended in a traceback. :func:`cell_problem` says what is wrong
with a cell, or None; the results store sets a failing cell aside and it is computed again.
"""
from __future__ import annotations

import math
from numbers import Real

from .metrics import METRIC_RANGES, MAY_BE_NAN, MULTICLASS_KEYS

#: a tidy row's columns (runner.py writes them)
ROW_KEYS = ("dataset", "pipeline", "protocol", "fold", "subject", "seed", "metric", "value")
#: what identifies a cell in its config, and must agree with each of its rows
IDENTITY = ("dataset", "pipeline", "fold", "seed")
FOLD_ROW = "__fold__"


def _differences(doc: dict, reference: dict) -> str:
    """The identity keys on which ``doc`` differs from ``reference``, with doc's values."""
    return ", ".join(f"{k} {doc[k]!r}" for k in IDENTITY if doc[k] != reference.get(k))


def _value_problem(metric, value) -> str | None:
    if metric not in METRIC_RANGES:
        return f"metric {metric!r} is none brainfm computes ({', '.join(METRIC_RANGES)})"
    if isinstance(value, bool) or not isinstance(value, Real):
        return f"{metric} value {value!r} is not a number"
    if math.isnan(value):
        return None if metric in MAY_BE_NAN else f"{metric} is NaN"
    low, high = METRIC_RANGES[metric]
    if not low <= value <= high:
        return f"{metric} {value!r} outside [{low:g}, {high:g}]"
    return None


def _rows_problem(config: dict, rows: list) -> str | None:
    metrics_of: dict[str, set] = {}
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or any(k not in row for k in ROW_KEYS):
            return f"row {i} is not a record with {', '.join(ROW_KEYS)}: {str(row)[:80]}"
        differ = _differences(row, config)
        if differ:
            return f"row {i} belongs to another cell ({differ} vs the config's)"
        bad = _value_problem(row["metric"], row["value"])
        if bad:
            return f"row {i} (subject {row['subject']!r}): {bad}"
        metrics_of.setdefault(str(row["subject"]), set()).add(row["metric"])
    pooled = metrics_of.get(FOLD_ROW, set())
    lacking = [m for m in MULTICLASS_KEYS if m not in pooled]
    if lacking:
        return f"no pooled fold score for {', '.join(lacking)} (rows of subject {FOLD_ROW!r})"
    uneven = sorted(s for s, m in metrics_of.items() if m != pooled)
    if uneven:
        return f"subject(s) {', '.join(uneven)} lack some of the fold's metrics"
    return None


def cell_problem(doc, expect: dict | None = None, subjects=None) -> str | None:
    """Why ``doc`` (a parsed cell file) is not a valid results cell, or None.

    ``expect``: the config the cell is read for (its dataset, pipeline, fold and seed must
    agree); ``subjects``: the test subjects the fold scores, each of which needs its rows.
    """
    if not (isinstance(doc, dict) and isinstance(doc.get("config"), dict)
            and isinstance(doc.get("rows"), list)):
        return "not a cell (no config and rows)"
    config, rows = doc["config"], doc["rows"]
    missing = [k for k in IDENTITY if k not in config]
    if missing:
        return f"its config lacks {', '.join(missing)}"
    if expect is not None:
        differ = _differences(config, expect)
        if differ:
            return f"its config is another cell's ({differ})"
    if not rows:
        return "no rows"
    bad = _rows_problem(config, rows)
    if bad:
        return bad
    absent = sorted(set(map(str, subjects or ())) - {str(r["subject"]) for r in rows})
    if absent:
        return f"no rows for test subject(s) {', '.join(absent)}"
    return None

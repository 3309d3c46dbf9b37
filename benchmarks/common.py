"""What the benchmark scripts share: the checkout's root, measuring in fresh processes, and
the min / median / max summary their tables print.

A script run as ``python benchmarks/<name>.py`` makes this package importable by putting the
checkout's root first on ``sys.path`` (so it also measures the checkout's brainfm)::

    if __package__ in (None, ""):  # run as a script
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
"""
from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
from pathlib import Path

#: The checkout the scripts measure.
ROOT = Path(__file__).resolve().parents[1]


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_child(cmd: list[str]) -> dict:
    """Run one measurement in a fresh process (this environment), and return the JSON object
    it prints on its last line; a failing child stops the benchmark with its error output."""
    out = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    if out.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def median(runs: list[dict], key: str) -> float:
    """The median of ``key`` over the runs' results."""
    return statistics.median(r[key] for r in runs)


def min_median_max(values, fmt: str = "{:.1f}") -> str:
    """``"min / median / max"`` of ``values``, each formatted with ``fmt``."""
    v = sorted(values)
    return " / ".join(fmt.format(x) for x in (v[0], statistics.median(v), v[-1]))

"""Paste a brainfm-bench run's summary.md into docs/benchmarks.md, unedited.

    python benchmarks/paste_summary.py quick runs/bench_quick/<time> \
        --command "brainfm-bench experiment=bench_quick" --wall "62 s"

Replaces what sits between ``<!-- <section>:begin -->`` and ``<!-- <section>:end -->``
with the command, its wall time and the run's tables, so the page always shows what a run
printed and how to repeat it.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def paste(section: str, report_dir: Path, command: str, wall: str, note: str = "") -> None:
    summary = (report_dir / "summary.md").read_text().strip()
    # one heading level down: the page's sections are ##, the run's datasets ###
    summary = re.sub(r"^### ", "#### ", summary, flags=re.M)
    body = [f"Command: `{command}`", "", f"Wall time on this machine: {wall}.", ""]
    if note:
        body += [note, ""]
    body += [summary]
    text = DOC.read_text()
    begin, end = f"<!-- {section}:begin -->", f"<!-- {section}:end -->"
    if begin not in text or end not in text:
        raise SystemExit(f"{DOC}: no {begin} ... {end} markers")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    DOC.write_text(head + begin + "\n" + "\n".join(body) + "\n" + end + tail)
    print(f"{DOC}: section {section!r} <- {report_dir / 'summary.md'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("section")
    parser.add_argument("report_dir", type=Path)
    parser.add_argument("--command", required=True)
    parser.add_argument("--wall", required=True)
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    paste(args.section, args.report_dir, args.command, args.wall, args.note)


if __name__ == "__main__":
    main()

"""Generated blocks of the docs: every table that has raw results behind it is rendered from them.

    python benchmarks/docs_blocks.py write    # rewrite every block        (make docs)
    python benchmarks/docs_blocks.py check    # fail where a doc differs   (make docs-check)

A block in README.md or docs/*.md sits between two markers,

    <!-- generated: NAME (by benchmarks/docs_blocks.py from SOURCES) -->
    ...
    <!-- end generated: NAME -->

and its text is what the function registered under NAME in ``BLOCKS`` renders from the
committed raw files SOURCES (JSON or CSV under benchmarks/results/ or docs/figures/). A block
edited by hand, a raw file changed without `make docs`, or a renderer changed without it, all
make `check` fail with the doc, the block and a diff. To add a block: write a renderer in
benchmarks/doc_tables.py (raw files in, markdown out), register it below, put the two markers
where the table goes and run `make docs`.
"""
from __future__ import annotations

import argparse
import difflib
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

if __package__ in (None, ""):  # run as a script: import this folder as the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import doc_tables as t  # noqa: E402  (this folder's renderers)

ROOT = Path(__file__).resolve().parents[1]
DOCS = ("README.md", "docs/*.md")
# markers stand at the start of a line, so prose can quote them
BLOCK = re.compile(r"^<!-- generated: (?P<name>[\w.-]+) [^\n]*-->\n(?P<body>.*?)"
                   r"^<!-- end generated: (?P=name) -->", re.S | re.M)
OPENING = re.compile(r"^<!-- generated: ([\w.-]+) ", re.M)


@dataclass(frozen=True)
class Block:
    name: str
    doc: str                    # where it lives, relative to the repository root
    sources: tuple[str, ...]    # the raw files it is rendered from, relative to the root
    render: Callable[..., str]  # called with the sources' paths, in this order

    def begin(self) -> str:
        return (f"<!-- generated: {self.name} (by benchmarks/docs_blocks.py from "
                f"{', '.join(self.sources)}) -->")

    def end(self) -> str:
        return f"<!-- end generated: {self.name} -->"

    def text(self, root: Path) -> str:
        missing = [s for s in self.sources if not (root / s).exists()]
        if missing:
            raise SystemExit(f"{self.doc}: block {self.name!r} needs {', '.join(missing)}, "
                             "which is not in the repository: commit the raw results or "
                             "remove the block and its registration")
        body = self.render(*(root / s for s in self.sources)).rstrip("\n")
        return f"{self.begin()}\n{body}\n{self.end()}"


R, F = "benchmarks/results", "docs/figures"
BLOCKS = [
    Block("readme-performance", "README.md", (f"{R}/prep.json", f"{R}/train_cpu.json",
                                               f"{R}/train_cuda.json"), t.readme_performance),
    Block("readme-demo", "README.md", (f"{R}/demo_heldout.json",), t.readme_demo),
    Block("prep", "docs/performance.md", (f"{R}/prep.json",), t.prep),
    Block("train-cpu", "docs/performance.md", (f"{R}/train_cpu.json",), t.train),
    Block("train-cuda", "docs/performance.md", (f"{R}/train_cuda.json",), t.train),
    Block("executor-speed", "docs/performance.md", (f"{R}/executor_speed.json",),
          t.executor_speed),
    Block("bench-full-cost", "docs/benchmarks.md", (f"{R}/bench_cost_bench_full.json",),
          t.bench_cost),
    Block("diffusion-cpu-2blocks", "docs/performance.md",
          (f"{R}/diffusion_speed_cpu_2blocks.json",), t.diffusion_speed),
    Block("diffusion-cpu-20blocks", "docs/performance.md",
          (f"{R}/diffusion_speed_cpu_20blocks.json",), t.diffusion_speed),
    Block("diffusion-gpu-speed", "docs/performance.md",
          (f"{R}/diffusion_gpu/run1/speed.txt",), t.diffusion_speed_gpu),
    Block("diffusion-gpu-speed-current", "docs/performance.md",
          (f"{R}/diffusion_gpu/current/speed.txt",), t.diffusion_speed_gpu),
    Block("pretrain-old-recipe", "docs/pretraining.md", (f"{R}/pretrain_recipe.json",),
          t.pretrain_old_recipe),
    Block("pretrain-bar", "docs/pretraining.md", (f"{R}/pretrain_recipe.json",),
          t.pretrain_bar),
    Block("pretrain-recipe", "docs/pretraining.md", (f"{R}/pretrain_recipe.json",),
          t.pretrain_recipe),
    Block("pretrain-steps", "docs/pretraining.md", (f"{R}/pretrain_recipe.json",),
          t.pretrain_steps),
    Block("pretrain-vs-zeros", "docs/pretraining.md", (f"{R}/pretrain_recipe.json",),
          t.pretrain_vs_zeros),
    Block("pretrain-transfer-400", "docs/pretraining.md", (f"{R}/pretrain_transfer_400.json",),
          t.pretrain_transfer),
    Block("pretrain-transfer-1600", "docs/pretraining.md",
          (f"{R}/pretrain_transfer_1600.json",), t.pretrain_transfer),
    Block("learning-curve-shallow", "docs/benchmarks.md",
          (f"{F}/learning_curve_shallow_ssvep.csv",), t.learning_curve_shallow),
    Block("learning-curve-eegnet", "docs/benchmarks.md",
          (f"{F}/learning_curve_eegnet_ssvep.csv",), t.learning_curve_eegnet),
    Block("convergence", "docs/benchmarks.md", (f"{F}/convergence_bench_cpu.json",),
          t.convergence),
    Block("diffusion-gpu-denoising", "docs/diffusion.md",
          (f"{R}/diffusion_gpu/run2/diffusion_checks_by_step.json",), t.diffusion_denoising),
    Block("diffusion-gpu-generation", "docs/diffusion.md",
          (f"{R}/diffusion_gpu/run2/diffusion_checks_by_step.json",), t.diffusion_generation),
    Block("diffusion-gpu-probe", "docs/diffusion.md",
          (f"{R}/diffusion_gpu/probe/probe_scores.csv",), t.diffusion_probe_gpu),
    Block("diffusion-tiny-denoising", "docs/diffusion.md",
          (f"{R}/diffusion_tiny_cpu/diffusion_checks_by_step.json",),
          t.diffusion_denoising_with_ci),
    Block("diffusion-tiny-generation", "docs/diffusion.md",
          (f"{R}/diffusion_tiny_cpu/diffusion_checks_by_step.json",),
          t.diffusion_generation_brief),
    Block("diffusion-tiny-probe", "docs/diffusion.md",
          (f"{R}/diffusion_tiny_cpu/probe/probe_scores.csv",), t.diffusion_probe_tiny),
    Block("subject-norm", "docs/benchmarks.md",
          (f"{R}/subject_norm/summary.csv", f"{R}/subject_norm/eegmat_csp_lda/summary.csv"),
          t.subject_norm),
    Block("reconstruction-report", "docs/pretraining.md",
          (f"{R}/reconstruction_report/summary.json",), t.reconstruction_report),
    Block("representation-runs", "docs/pretraining.md", (f"{R}/representations/runs.csv",),
          t.representation_runs),
    Block("representation-selection", "docs/pretraining.md",
          (f"{R}/representations/layers_picked.csv",), t.representation_selection),
    Block("representation-scores", "docs/pretraining.md", (f"{R}/representations/scores.csv",),
          t.representation_scores),
    Block("representation-vs-random", "docs/pretraining.md",
          (f"{R}/representations/comparisons.csv",), t.representation_vs_random),
    Block("representation-vs-band-power", "docs/pretraining.md",
          (f"{R}/representations/comparisons.csv",), t.representation_vs_band_power),
    Block("finetune-vs-scratch", "docs/pretraining.md",
          (f"{R}/finetune_vs_scratch/comparisons.csv",), t.finetune_vs_scratch),
]


def doc_paths(root: Path) -> list[Path]:
    """Every page that may hold a block: README.md and docs/*.md."""
    return sorted(p for pattern in DOCS for p in root.glob(pattern))


def regenerate(doc: Path, root: Path) -> tuple[str, dict[str, tuple[str, str]], list[str]]:
    """The doc with every block re-rendered; per block (as found, as rendered); problems."""
    text = doc.read_text()
    rel = doc.relative_to(root).as_posix()
    registered = {b.name: b for b in BLOCKS}
    problems, found = [], {}
    opened = OPENING.findall(text)
    for name in opened:
        if name not in registered:
            problems.append(f"{rel}: block {name!r} is not registered in "
                            "benchmarks/docs_blocks.py (BLOCKS)")
        elif registered[name].doc != rel:
            problems.append(f"{rel}: block {name!r} is registered for {registered[name].doc}")
    closed = [m["name"] for m in BLOCK.finditer(text)]
    for name in set(opened) - set(closed):
        problems.append(f"{rel}: block {name!r} has no '<!-- end generated: {name} -->'")
    for block in BLOCKS:
        if block.doc == rel and block.name not in opened:
            problems.append(f"{rel}: registered block {block.name!r} is missing from the doc "
                            f"(put {block.begin()} ... {block.end()} where it goes)")
    if problems:
        return text, found, problems

    def replace(match: re.Match) -> str:
        block = registered[match["name"]]
        new = block.text(root)
        found[block.name] = (match.group(0), new)
        return new

    return BLOCK.sub(replace, text), found, problems


def write(root: Path = ROOT) -> int:
    problems = []
    for doc in doc_paths(root):
        new, found, errors = regenerate(doc, root)
        problems += errors
        if not errors and new != doc.read_text():
            doc.write_text(new)
            changed = [n for n, (old, text) in found.items() if old != text]
            print(f"{doc.relative_to(root)}: rewrote {', '.join(changed)}")
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


def check(root: Path = ROOT) -> int:
    """0 when every block equals what its renderer makes of the committed raw files."""
    problems = []
    for doc in doc_paths(root):
        rel = doc.relative_to(root).as_posix()
        _, found, errors = regenerate(doc, root)
        problems += errors
        for name, (old, new) in found.items():
            if old != new:
                diff = "".join(difflib.unified_diff(
                    old.splitlines(True), new.splitlines(True),
                    f"{rel} (block {name}, as committed)", f"{rel} (block {name}, rendered)"))
                problems.append(f"{rel}: generated block {name!r} differs from what "
                                f"benchmarks/docs_blocks.py renders from its raw results "
                                f"(run `make docs`, or fix the raw file):\n{diff}")
    for p in problems:
        print(p, file=sys.stderr)
    if not problems:
        print(f"docs-check: {len(BLOCKS)} generated blocks match their raw results")
    return 1 if problems else 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("command", choices=("write", "check"))
    p.add_argument("--root", type=Path, default=ROOT,
                   help="repository root whose docs and raw results are used")
    args = p.parse_args(argv)
    return (write if args.command == "write" else check)(args.root.resolve())


if __name__ == "__main__":
    sys.exit(main())

"""Training throughput of the ``cbramod`` configuration: brainfm vs the original CBraMod code.

One training step = forward + masked MSE + backward + gradient clipping + AdamW step, on a
batch of 32 x 19 channels x 30 patches of 200 samples (CBraMod's pretraining shape), fp32,
the same weights and masks on both sides. Each measurement runs in a fresh process; cells are
medians over ``--repeats`` processes, both sides under the same environment.

The original is not part of brainfm: clone github.com/wjq-learning/CBraMod (commit
b9e961003214326972c567eff390e75b0287e32a was measured) and pass its folder as
``--original-dir`` (default ``.bench/cbramod_orig``, git-ignored).

    python benchmarks/train.py --write        # figures into docs/performance.md
    python benchmarks/train.py --device cuda  # on a GPU: adds bf16 and torch.compile rows
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import this folder as the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import ROOT, min_median_max  # noqa: E402

HERE = ROOT / "benchmarks"
SHAPE = (32, 19, 30, 200)


def _original_model(original_dir: Path):
    sys.path.insert(0, str(original_dir))
    from models.cbramod import CBraMod  # the original's own module, unmodified

    return CBraMod()


def child(impl: str, steps: int, warmup: int, original_dir: Path, device: str,
          threads: int | None) -> dict:
    import torch
    import torch.nn.functional as F

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    original = _original_model(original_dir) if original_dir.exists() else None
    if impl.startswith("original"):
        model = original
        forward = lambda x, m: model(x, m.long())  # noqa: E731
    else:
        from brainfm.models.cbramod_import import (CBRAMOD_CONFIG,
                                                   convert_cbramod_state_dict)
        from brainfm.models.criss_cross import CrissCrossTransformer

        model = CrissCrossTransformer(**CBRAMOD_CONFIG)
        if original is not None:  # identical starting weights
            model.load_state_dict(convert_cbramod_state_dict(original.state_dict()))
        if "compile" in impl:
            model = torch.compile(model)
        forward = lambda x, m: model(x, mask=m)  # noqa: E731
    model = model.to(device).train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-4,
                            weight_decay=0.05)
    g = torch.Generator().manual_seed(1)
    x = (torch.randn(*SHAPE, generator=g) * 0.1).to(device)
    masks = [(torch.rand(*SHAPE[:3], generator=g) < 0.5).to(device) for _ in range(4)]
    autocast = torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16,
                              enabled="bf16" in impl)

    def step(i: int) -> float:
        m = masks[i % len(masks)]
        with autocast:
            y = forward(x, m)
        loss = F.mse_loss(y[m].float(), x[m])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return float(loss.detach())

    for i in range(warmup):
        step(i)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    losses = [step(warmup + i) for i in range(steps)]
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return {"impl": impl, "samples_per_s": steps * SHAPE[0] / seconds,
            "step_s": seconds / steps, "peak_mb": peak, "last_loss": losses[-1]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int)
    p.add_argument("--original-dir", type=Path, default=ROOT / ".bench" / "cbramod_orig")
    p.add_argument("--impls", default=None, help="comma list; default depends on --device")
    p.add_argument("--write", action="store_true")
    p.add_argument("--child")
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.steps, args.warmup, args.original_dir,
                               args.device, args.threads)))
        return 0
    impls = (args.impls.split(",") if args.impls else
             ["original", "brainfm", "brainfm-compile"] if args.device == "cpu" else
             ["original", "brainfm", "brainfm-bf16", "brainfm-bf16-compile"])
    if not args.original_dir.exists():
        print(f"original CBraMod not found at {args.original_dir}: brainfm rows only",
              file=sys.stderr)
        impls = [i for i in impls if not i.startswith("original")]
    runs: dict[str, list] = {i: [] for i in impls}
    for _ in range(args.repeats):  # interleaved, so drifts in machine load hit every impl
        for impl in impls:
            cmd = [sys.executable, __file__, "--child", impl, "--steps", str(args.steps),
                   "--warmup", str(args.warmup), "--device", args.device,
                   "--original-dir", str(args.original_dir)]
            if args.threads:
                cmd += ["--threads", str(args.threads)]
            out = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
            if out.returncode:
                raise RuntimeError(f"{impl} failed:\n{out.stderr[-3000:]}")
            runs[impl].append(json.loads(out.stdout.strip().splitlines()[-1]))
    results = {"args": {"device": args.device, "steps": args.steps, "warmup": args.warmup,
                        "MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX")}, "runs": runs}
    print(render(results))
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / f"train_{args.device.split(':')[0]}.json").write_text(
        json.dumps(results, indent=1))
    if args.write:
        from benchmarks.docs_blocks import write

        write()
    return 0


def runs_of(results: dict) -> dict:
    """The per-process rows by implementation; older files hold only these, without args."""
    return results.get("runs", results)


def render(results: dict) -> str:
    """min / median / max over processes per implementation, and the median ratios."""
    runs, meta = runs_of(results), results.get("args", {})

    def mmm(impl, key, fmt):
        return min_median_max((r[key] for r in runs[impl]), fmt)

    n = {impl: len(rs) for impl, rs in runs.items()}
    per_process = (f"{meta['steps']} steps after {meta['warmup']} warm-up per process, "
                   f"MALLOC_ARENA_MAX={meta['MALLOC_ARENA_MAX']}, device {meta['device']}"
                   if meta else "steps per process and environment not recorded in this file")
    lines = [f"`cbramod` config (4,924,000 parameters), batch {SHAPE[0]} x {SHAPE[1]} ch x "
             f"{SHAPE[2]} patches x {SHAPE[3]}, fp32 unless named; "
             + ", ".join(f"{k} processes of {impl}" for impl, k in n.items())
             + f" ({per_process}); min / median / max over processes.", "",
             "| implementation | samples/s | s/step | peak memory MB | vs original (medians) |",
             "|---|---|---|---|---|"]
    base = statistics.median(r["samples_per_s"] for r in runs["original"]) \
        if "original" in runs else None
    for impl in runs:
        med = statistics.median(r["samples_per_s"] for r in runs[impl])
        ratio = f"{med / base:.2f}x" if base else "n/a"
        lines.append(f"| {impl} | {mmm(impl, 'samples_per_s', '{:.2f}')} | "
                     f"{mmm(impl, 'step_s', '{:.2f}')} | {mmm(impl, 'peak_mb', '{:.0f}')} | "
                     f"{ratio} |")
    return "\n".join(lines)

if __name__ == "__main__":
    sys.exit(main())

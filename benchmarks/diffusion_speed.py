"""Training throughput and peak memory of the ``eegdm`` denoiser: brainfm vs the original EEGDM code.

One training step = forward + MSE against a fixed target + backward + AdamW step (lr 1e-4), on
a batch of 32 sequences x 1 channel x 1000 samples (EEGDM's pretraining crop), fp32, the same
starting weights, inputs, steps and channel indices on both sides. brainfm runs the published
size (20 blocks, d 128, d_state 128, conditioning 512) with the reference's channel-index
table (``channel_conditioning="index"``) so that the reference's initial weights load into it
unchanged; the sensor-feature code of the ``eegdm`` config differs by 896 parameters and not
in cost.

Every measurement is a fresh process (peak memory = that process's RSS high-water mark,
``ru_maxrss``, which includes the Python/torch runtime); sides alternate, so drifts in machine
load hit both. Both run with the same ``MALLOC_ARENA_MAX`` and thread count.

The original is not part of brainfm: put the ``model/`` folder of github.com/jhpuah/EEGDM
(commit 976a5f4 was measured) and einops under ``--original-dir`` (default
``.bench/eegdm_orig``, git-ignored; einops may sit in its ``deps/``).

    MALLOC_ARENA_MAX=2 python benchmarks/diffusion_speed.py --repeats 5 --write
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import this folder as the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import ROOT, median, min_median_max, peak_rss_mb, run_child  # noqa: E402

HERE = ROOT / "benchmarks"
BATCH, LENGTH = 32, 1000
REFERENCE_KW = dict(in_channels=1, d_model=128, d_state=128, n_layer=20, n_ssm=None,
                    kernel_init="diag-lin", kernel_mode="diag", bidirectional=True, d_cond=512,
                    d_cond_embed=128, local_cond_ch=0, n_class=22, have_null_class=False,
                    self_gated=False)


def _reference(original_dir: Path, layers: int = 20):
    """The original's Wavenet at the published width with ``layers`` blocks (the one place
    the reference is built: initial weights, its timed runs and ``--saved``)."""
    for path in (str(original_dir / "deps"), str(original_dir)):
        if path not in sys.path:
            sys.path.insert(0, path)
    from model.diffusion_model import Wavenet  # the original's own module, unmodified

    return Wavenet(**{**REFERENCE_KW, "n_layer": layers})


def _brainfm(state: dict):
    """brainfm's denoiser holding the reference's weights ``state`` (channel-index table)."""
    from brainfm.models.diffusion_denoiser import DiffusionDenoiser
    from brainfm.models.eegdm_import import convert_eegdm_state_dict, eegdm_config

    model = DiffusionDenoiser(**eegdm_config(state))
    model.load_state_dict(convert_eegdm_state_dict(state))
    return model


def child(impl: str, steps: int, warmup: int, original_dir: Path, init: Path,
          threads: int, layers: int, device: str = "cpu") -> dict:
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    if impl == "init":  # write the reference's initial weights once, for both sides
        torch.save(_reference(original_dir, layers).state_dict(), init)
        return {"impl": impl}
    state = torch.load(init, weights_only=True)
    if impl == "original":
        model = _reference(original_dir, layers)
        model.load_state_dict(state)
        forward = lambda x, t, c: model(x[:, None], t[:, None], c[:, None])[:, 0]  # noqa: E731
    else:
        model = _brainfm(state)
        forward = model.denoise
    del state
    n_params = sum(p.numel() for p in model.parameters())
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)
    g = torch.Generator().manual_seed(1)
    x, target = (torch.randn(BATCH, LENGTH, generator=g).to(device) for _ in range(2))
    t = torch.randint(0, 50, (BATCH,), generator=g).to(device)
    channel = torch.randint(0, 22, (BATCH,), generator=g).to(device)
    rss_setup = peak_rss_mb()
    cuda = device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    def step() -> float:
        loss = torch.nn.functional.mse_loss(forward(x, t, channel), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach())

    for _ in range(warmup):
        step()
    sync()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0, c0 = time.perf_counter(), time.process_time()
    losses = [step() for _ in range(steps)]  # float(loss) synchronises every step
    sync()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    gpu = {"peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20,
           "gpu": torch.cuda.get_device_name()} if cuda else {}
    return {"impl": impl, "device": device, **gpu,
            "samples_per_s": steps * BATCH / seconds, "step_s": seconds / steps,
            "samples_per_cpu_s": steps * BATCH / cpu,
            "peak_mb": peak_rss_mb(), "setup_rss_mb": rss_setup, "losses": losses,
            "n_params": n_params, "threads": threads, "layers": layers,
            "malloc_arena_max": os.environ.get("MALLOC_ARENA_MAX")}


def saved_per_block(original_dir: Path, n_layers: int = 2) -> dict:
    """MB of tensors autograd keeps for the backward pass, per block of the published width
    (one forward of the batch through ``n_layers`` blocks, the stem and head subtracted by
    differencing 1 and ``n_layers`` blocks)."""
    import torch

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(BATCH, LENGTH, generator=g)
    t = torch.randint(0, 50, (BATCH,), generator=g)
    c = torch.randint(0, 22, (BATCH,), generator=g)
    out = {}
    for layers in (1, n_layers):
        ref = _reference(original_dir, layers)
        ours = _brainfm(ref.state_dict())
        for name, fn in (("original", lambda: ref(x[:, None], t[:, None], c[:, None])),
                         ("brainfm", lambda: ours.denoise(x, t, c))):
            kept: dict[int, int] = {}

            def pack(tensor):
                storage = tensor.untyped_storage()
                kept[storage.data_ptr()] = storage.nbytes()
                return tensor
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda v: v):
                fn()
            out.setdefault(name, {})[layers] = sum(kept.values()) / 2**20
    return {name: (v[n_layers] - v[1]) / (n_layers - 1) for name, v in out.items()}


def _run_child(impl: str, args) -> dict:
    """One fresh process for ``impl`` (same environment, JSON on its last line)."""
    result = run_child([sys.executable, __file__, "--child", impl, "--steps", str(args.steps),
                        "--warmup", str(args.warmup), "--threads", str(args.threads),
                        "--original-dir", str(args.original_dir), "--init", str(args.init),
                        "--layers", str(args.layers), "--device", args.device])
    print(json.dumps(result), flush=True)
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--layers", type=int, default=20,
                   help="blocks of the published width (20 = the eegdm config)")
    p.add_argument("--original-dir", type=Path, default=ROOT / ".bench" / "eegdm_orig")
    p.add_argument("--init", type=Path, default=ROOT / ".bench" / "eegdm_init.pth")
    p.add_argument("--impls", default="original,brainfm")
    p.add_argument("--write", action="store_true", help="rewrite docs/performance.md's section")
    p.add_argument("--saved", action="store_true",
                   help="only print the MB autograd keeps per block, both sides")
    p.add_argument("--device", default="cpu", help="cpu, or cuda (peak memory is then the "
                   "GPU's allocated high-water mark over the timed steps)")
    p.add_argument("--child")
    args = p.parse_args(argv)
    if args.saved:
        print(json.dumps(saved_per_block(args.original_dir)))
        return 0
    if args.child:
        print(json.dumps(child(args.child, args.steps, args.warmup, args.original_dir,
                               args.init, args.threads, args.layers, args.device)))
        return 0
    if not (args.original_dir / "model" / "diffusion_model.py").exists():
        raise SystemExit(f"the original EEGDM code is not at {args.original_dir}/model: put "
                         "github.com/jhpuah/EEGDM's model/ folder (commit 976a5f4) there")
    _run_child("init", args)
    impls = args.impls.split(",")
    runs: dict[str, list] = {i: [] for i in impls}
    for _ in range(args.repeats):  # interleaved
        for impl in impls:
            runs[impl].append(_run_child(impl, args))
    text = render(runs, args)
    print(text)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / f"diffusion_speed_{args.device.split(':')[0]}_{args.layers}blocks.json"
     ).write_text(json.dumps(
        {"args": {k: str(v) for k, v in vars(args).items()}, "runs": runs}, indent=1))
    if args.write:
        from benchmarks.docs_blocks import write

        write()
    return 0


def render(runs: dict, args) -> str:
    def mmm(impl, key, fmt):
        return min_median_max((r[key] for r in runs[impl]), fmt)

    first = next(iter(runs.values()))[0]
    size = ("`eegdm` size" if args.layers == 20 else
            f"**{args.layers} of the 20 blocks** of the `eegdm` size")
    lines = [f"{size} ({first['n_params']:,} parameters with the index table), batch "
             f"{BATCH} x 1 channel x {LENGTH} samples, fp32, {first.get('gpu', 'CPU')}, "
             f"{args.threads} thread(s), "
             f"MALLOC_ARENA_MAX={first.get('malloc_arena_max')}; {args.repeats} processes "
             f"per side x {args.steps} timed steps after {args.warmup} warm-up; min / median / "
             "max over processes.", "",
             "| implementation | samples/s (wall) | samples per CPU-second | s/step (wall) | "
             "peak RSS MB | RSS before training MB |", "|---|---|---|---|---|---|"]
    for impl in runs:
        lines.append(f"| {impl} | {mmm(impl, 'samples_per_s', '{:.2f}')} | "
                     f"{mmm(impl, 'samples_per_cpu_s', '{:.2f}')} | "
                     f"{mmm(impl, 'step_s', '{:.2f}')} | {mmm(impl, 'peak_mb', '{:.0f}')} | "
                     f"{mmm(impl, 'setup_rss_mb', '{:.0f}')} |")
    if "peak_gpu_mb" in first:
        lines += ["", "Peak GPU memory allocated over the timed steps, MB: " + "; ".join(
            f"{impl} {mmm(impl, 'peak_gpu_mb', '{:.0f}')}" for impl in runs)]
    if "original" in runs and "brainfm" in runs:
        med = {i: {k: median(runs[i], k) for k in
                   ("samples_per_s", "samples_per_cpu_s", "peak_mb", "setup_rss_mb")}
               for i in runs}
        o, b = med["original"], med["brainfm"]
        lines += ["", f"brainfm / original (medians): samples/s "
                  f"{b['samples_per_s'] / o['samples_per_s']:.2f}x (per CPU-second "
                  f"{b['samples_per_cpu_s'] / o['samples_per_cpu_s']:.2f}x), peak RSS "
                  f"{b['peak_mb'] / o['peak_mb']:.2f}x (training's own growth over the RSS "
                  f"before training: {(b['peak_mb'] - b['setup_rss_mb']) / max(o['peak_mb'] - o['setup_rss_mb'], 1):.2f}x)."]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

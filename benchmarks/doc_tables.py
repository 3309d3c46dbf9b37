"""Renderers of the docs' generated blocks: committed raw results in, markdown out.

Each function takes the paths of its raw files (in the order benchmarks/docs_blocks.py
registers them) and returns the block's text. Nothing here measures anything: a renderer only
reads, so `make docs-check` can re-derive every table from the repository alone. Where a
benchmark script already renders its own table (prep.py, train.py, diffusion_speed.py,
pretrain_transfer.py), its function is used, so the page and the script print the same thing.
"""
from __future__ import annotations

import csv
import json
import statistics
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

from benchmarks import bench_cost as bench_cost_script
from benchmarks import diffusion_speed as diffusion_speed_script
from benchmarks import executor_speed as executor_speed_script
from benchmarks import finetune_vs_scratch as finetune_vs_scratch_script
from benchmarks import prep as prep_script
from benchmarks import pretrain_transfer as pretrain_transfer_script
from benchmarks import subject_norm as subject_norm_script
from benchmarks import train as train_script
from benchmarks.common import min_median_max

MULTICHANNEL = ("eegmat", "eegmmidb_baseline", "muse_p300", "ssvep_exoskeleton")
SHORT = {"eegmmidb_baseline": "eegmmidb", "muse_p300": "muse", "ssvep_exoskeleton": "ssvep"}


def _json(path: Path):
    return json.loads(Path(path).read_text())


def _csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _ratio_range(values: list[float], digits: int = 1) -> str:
    lo, hi = f"{min(values):.{digits}f}", f"{max(values):.{digits}f}"
    return lo if lo == hi else f"{lo}-{hi}"


# --- performance.md and the README's summary of it -----------------------------------------

def prep(path: Path) -> str:
    return prep_script.render(_json(path))


def train(path: Path) -> str:
    return train_script.render(_json(path))


def executor_speed(path: Path) -> str:
    return executor_speed_script.render(_json(path))


def bench_cost(path: Path) -> str:
    return bench_cost_script.render(_json(path))


def diffusion_speed(path: Path) -> str:
    raw = _json(path)
    args = {k: v for k, v in raw["args"].items() if k in ("threads", "repeats", "steps",
                                                           "warmup", "layers")}
    return diffusion_speed_script.render(raw["runs"],
                                         SimpleNamespace(**{k: int(v) for k, v in args.items()}))


def diffusion_speed_gpu(path: Path) -> str:
    """The GPU job's raw output: a JSON line per process (after the weights' init line), then
    the table diffusion_speed.py printed, which is left aside: the rows are the record."""
    runs = defaultdict(list)
    for line in Path(path).read_text().splitlines():
        row = json.loads(line) if line.startswith("{") else {}
        if "samples_per_s" in row:
            runs[row["impl"]].append(row)

    def mmm(impl, key, fmt="{:.1f}"):
        return min_median_max((r[key] for r in runs[impl]), fmt)

    lines = ["| implementation | processes | samples/s (min / median / max) | "
             "peak GPU memory allocated, MB |", "|---|---|---|---|"]
    for impl in runs:
        lines.append(f"| {impl} | {len(runs[impl])} | {mmm(impl, 'samples_per_s')} | "
                     f"{mmm(impl, 'peak_gpu_mb', '{:.0f}')} |")
    med = {i: {k: statistics.median(r[k] for r in rs) for k in ("samples_per_s", "peak_gpu_mb")}
           for i, rs in runs.items()}
    b, o = med["brainfm"], med["original"]
    return "\n".join(lines + ["", f"brainfm / original (medians, {runs['brainfm'][0]['gpu']}): "
                             f"**{b['samples_per_s'] / o['samples_per_s']:.2f}x samples/s, "
                             f"{b['peak_gpu_mb'] / o['peak_gpu_mb']:.2f}x peak GPU memory**."])


def readme_performance(prep_path: Path, train_path: Path, train_gpu_path: Path) -> str:
    """The README's bullets: data preparation, loading, training on CPU and on one GPU, with
    their ranges."""
    res = _json(prep_path)
    rows = [res[name] for name in ("eegmat", "ssvep_exoskeleton")]

    def vs_bd(row, ours, theirs, field):
        return row[f"brainfm_{ours}"][field] / row[f"braindecode_{theirs}"][field]

    one = [vs_bd(r, "prep", "prep", "hours_per_s") for r in rows]
    two = [vs_bd(r, "prep_j2", "prep", "hours_per_s") for r in rows]
    mem = [r["brainfm_prep"]["peak_rss_mb"] / r["braindecode_prep"]["peak_rss_mb"] for r in rows]
    steady = [r["brainfm_load_w0"]["steady_windows_per_s"] for r in rows]
    load = [vs_bd(r, "load_w0", "load_w0", "steady_windows_per_s") for r in rows]
    w2 = [r[f"{lib}_load_w2"]["steady_windows_per_s"] for r in rows
          for lib in ("brainfm", "braindecode")]
    runs = train_script.runs_of(_json(train_path))
    speed = {impl: sorted(r["samples_per_s"] for r in rs) for impl, rs in runs.items()}
    base = statistics.median(speed["original"])
    eager = [v / base for v in speed["brainfm"]]
    compiled = [v / base for v in speed["brainfm-compile"]]
    return "\n".join([
        f"- data preparation (read, standardise, window, write the store): "
        f"{_ratio_range(one)}x braindecode in one process, {_ratio_range(two)}x with "
        f"brainfm's default 2 processes, at {max(mem):.1f}x its peak memory (flat in the "
        "number of recordings);",
        f"- loading: {min(steady) / 1000:.0f}k-{max(steady) / 1000:.0f}k windows/s in-process, "
        f"{_ratio_range(load)}x braindecode; with worker processes on 2 cores both are bound "
        f"by inter-process transfer (~{min(w2) / 1000:.0f}-{max(w2) / 1000:.0f}k windows/s): "
        "use `num_workers=0` on such machines;",
        f"- training the `cbramod` configuration on CPU, against the original CBraMod code's "
        f"median: {_ratio_range(eager, 2)}x eager and {_ratio_range(compiled, 2)}x with "
        f"`compile=true` over only {len(speed['brainfm'])} processes per side, whose two "
        "compiled runs disagree; too few to quote one figure (docs/performance.md; to be "
        "re-run with at least 5 processes per side, issue 17);",
        _readme_gpu(train_script.runs_of(_json(train_gpu_path)))])


def _readme_gpu(runs: dict) -> str:
    med = {impl: statistics.median(r["samples_per_s"] for r in rs) for impl, rs in runs.items()}
    mem = {impl: statistics.median(r["peak_mb"] for r in rs) for impl, rs in runs.items()}
    n = len(runs["original"])
    return (f"- training the `cbramod` configuration on one H200 GPU, medians against the "
            f"original's fp32 step over {n} processes per side: {med['brainfm'] / med['original']:.2f}x "
            f"eager fp32, {med['brainfm-bf16'] / med['original']:.2f}x with bf16 at "
            f"{mem['brainfm-bf16'] / mem['original']:.2f}x the GPU memory, and "
            f"{med['brainfm-bf16-compile'] / med['original']:.2f}x with bf16 and `compile=true` "
            f"({len(runs['brainfm-bf16-compile'])} process; docs/performance.md).")


def readme_demo(path: Path) -> str:
    """The demo's held-out check, one run per seed (benchmarks/demo_seeds.py)."""
    raw = _json(path)
    rows = [(r["seed"], row) for r in raw["runs"] for row in r["heldout"].values()]
    trivial = {"spatial": "the visible-channel mean", "temporal": "the temporal neighbour",
               "zeros": "zeros"}
    best = sorted({trivial[row["best_trivial"]] for _, row in rows})
    return (f"`{raw['command']}`, one run per seed, each seed holding out another subject: "
            f"held-out masked-patch MSE as a fraction of the best trivial predictor's "
            f"({' / '.join(best)}; below 1 beats it): "
            + ", ".join(f"seed {seed} {row['model_vs_best_trivial']:.3f}" for seed, row in rows)
            + ". Made by `python benchmarks/demo_seeds.py`.")


# --- pretraining.md ------------------------------------------------------------------------

def _default_at(runs: list[dict], steps: int) -> dict:
    return next(r for r in runs if r["variant"] == "default" and r["steps"] == steps)


def pretrain_old_recipe(path: Path) -> str:
    """Section 1: what the old recipe's model scored against zeros and the channel mean."""
    old = next(r for r in _json(path) if r["variant"] == "baseline")
    h = old["heldout"]["eegmat"]
    return (f"eegmat {h['model_vs_zero']:.2f} of the zeros predictor's MSE, against "
            f"{h['spatial_vs_zero']:.2f} for the channel mean (the old recipe at "
            f"{old['steps']} steps, `baseline` in `benchmarks/results/pretrain_recipe.json`)")


def pretrain_bar(path: Path) -> str:
    """Section 3: the trivial predictors against zeros, for the default recipe's masks."""
    run = _default_at(_json(path), 1600)
    h = run["heldout"]
    temporal = [d["temporal_vs_zero"] for d in h.values()]
    lines = [f"Held-out MSE as a fraction of zeros' for the default recipe's masks (mask ratio "
             f"{run['settings']['task.mask_ratio']}, seed {run['seed']}; the mask ratio moves "
             f"these too). Temporal interpolation across a 1 s gap is worse than zeros "
             f"everywhere ({min(temporal):.1f}-{max(temporal):.1f}x zeros' MSE). The "
             "visible-channel mean is the real bar wherever channels share a reference:", ""]
    for name, end in (("eegmat", ";"), ("eegmmidb_baseline", ";"), ("ssvep_exoskeleton", ".")):
        lines.append(f"- {SHORT.get(name, name)}: {h[name]['spatial_vs_zero']:.2f} of zeros' "
                     f"MSE{end}")
    muse = h["muse_p300"]["spatial_vs_zero"]
    old = next(r for r in _json(path) if r["variant"] == "baseline")
    lines += ["", f"Muse's four electrodes lie far apart, and copying their mean is worse than "
              f"zeros ({muse:.2f}; {old['heldout']['muse_p300']['spatial_vs_zero']:.2f} with "
              f"the old recipe's mask ratio {old['settings']['task.mask_ratio']}); there the "
              "bar is zeros."]
    return "\n".join(lines)


RECIPE_ROWS = [  # the ablation's variants, in the page's order, with the name shown
    ("baseline", "baseline (old pretrain_all)"), ("lin", "lin"), ("ampnorm", "ampnorm"),
    ("ampnorm_log", "ampnorm_log"), ("ampnorm_log_sample", "ampnorm_log_sample"),
    ("ampnorm_log_sample_lin", "ampnorm_log_sample_lin"), ("meanfill", "meanfill*"),
    ("B_meanfill", "B_meanfill*"), ("C_gate_lr3e-3", "C_gate_lr3e-3"),
    ("C_gate_lr3e-3_mask0.3", "**default** (= C_gate_lr3e-3_mask0.3)")]


def _recipe_cells(run: dict, bold: bool = False) -> list[str]:
    h = run["heldout"]
    fmt = "**{:.3f}**" if bold else "{:.3f}"
    worst = max(h[d]["model_vs_best_trivial"] for d in MULTICHANNEL)
    return ([fmt.format(h[d]["model_vs_best_trivial"]) for d in MULTICHANNEL]
            + [fmt.format(worst)]
            + [f"{h[d]['model_vs_best_trivial']:.3f}" for d in ("bonn", "delhi")])


def pretrain_recipe(path: Path) -> str:
    runs = {r["variant"]: r for r in _json(path) if r["variant"] != "default"}
    lines = ["| variant | mask token | amplitude norm | spectrum | linear branch | loss | lr | "
             "mask ratio | eegmat | eegmmidb | muse | ssvep | worst multichannel | bonn | "
             "delhi |", "|" + "---|" * 15]
    for variant, shown in RECIPE_ROWS:
        r = runs[variant]
        s = r["settings"]
        token = ("zeros" if s["model.mask_token"] == "zeros" else
                 "mean + gate" if r.get("code") == "current" else "mean, no gate")
        loss = "per window" if s["task.loss_norm"] == "sample" else "raw"
        cells = [shown, token, s["model.amplitude_norm"], s["model.spectral_input"],
                 "yes" if s["model.linear_branch"] == "true" else "no", loss, s["task.lr"],
                 s["task.mask_ratio"], *_recipe_cells(r, bold=shown.startswith("**"))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def pretrain_steps(path: Path) -> str:
    runs = sorted((r for r in _json(path) if r["variant"] == "default"),
                  key=lambda r: r["steps"])
    first = runs[0]["steps"]
    lines = ["| steps | seed | eegmat | eegmmidb | muse | ssvep | worst multichannel | bonn | "
             "delhi | wall (1 thread, shared) |", "|" + "---|" * 10]
    for r in runs:
        name = f"{r['steps']} ({r['steps'] // first}x" + (
            ", `pretrain_all`)" if r["steps"] == 1600 else ")")
        lines.append(f"| {name} | {r['seed']} | " + " | ".join(_recipe_cells(r))
                     + f" | {r['wall_s'] / 60:.1f} min |")
    return "\n".join(lines)


def pretrain_vs_zeros(path: Path) -> str:
    run = _default_at(_json(path), 1600)
    h = run["heldout"]
    below = [1 - h[d]["model_vs_best_trivial"] for d in MULTICHANNEL]
    lines = [f"At {run['steps']} steps (seed {run['seed']}, one run) the held-out MSE is "
             f"{100 * min(below):.0f}-{100 * max(below):.0f} % below the best trivial "
             "predictor on every multichannel dataset. Against zeros, that is:", ""]
    for d in MULTICHANNEL:
        bar = ("zeros is the bar there" if h[d]["best_trivial"] == "zeros"
               else f"visible-channel mean {h[d]['spatial_vs_zero']:.2f}")
        end = "." if d == MULTICHANNEL[-1] else ";"
        lines.append(f"- {SHORT.get(d, d)}: {h[d]['model_vs_zero']:.2f} ({bar}){end}")
    return "\n".join(lines)


def pretrain_transfer(path: Path) -> str:
    return pretrain_transfer_script.markdown(_json(path)["rows"])


# --- benchmarks.md -------------------------------------------------------------------------

def _learning_curve(path: Path, epochs: list[int]) -> str:
    rows = {int(r["epoch"]): r for r in _csv(path)}
    best = min(rows, key=lambda e: float(rows[e]["val_loss"]))
    out = ["| epoch | " + " | ".join(map(str, epochs)) + " |", "|---|" + "---|" * len(epochs)]
    for key, label in (("val_loss", "validation loss"),
                       ("val_balanced_accuracy", "validation balanced accuracy"),
                       ("test_balanced_accuracy", "test balanced accuracy (not used)")):
        cells = []
        for e in epochs:
            cell = f"{float(rows[e][key]):.3f}"
            cells.append(f"**{cell}**" if key == "val_loss" and e == best else cell)
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(out + ["", f"Lowest validation loss: epoch {best} of {max(rows)}."])


def learning_curve_shallow(path: Path) -> str:
    return _learning_curve(path, [1, 4, 6, 10, 15, 20, 25, 30])


def learning_curve_eegnet(path: Path) -> str:
    return _learning_curve(path, [1, 5, 10, 15, 20, 25, 30, 35, 40])


def convergence(path: Path) -> str:
    lines = ["| dataset | pipeline | selected on | folds | epochs | median selected epoch | "
             "selected in last fifth | late gain share (median) |", "|" + "---|" * 8]
    for r in _json(path):
        epoch = r["median_selected_epoch"]
        lines.append(f"| {r['dataset']} | {r['pipeline']} | {r['selected_on']} | {r['folds']} "
                     f"| {r['epochs']} | {epoch:g} | {r['share_selected_in_last_fifth']:.2f} | "
                     f"{r['median_late_gain_share']:.2f} |")
    return "\n".join(lines)


# --- diffusion.md --------------------------------------------------------------------------

def _last_point(path: Path) -> dict:
    return _json(path)["points"][-1]


def diffusion_denoising(path: Path) -> str:
    """Means over held-out sequences, with each network's error relative to Wiener's."""
    point = _last_point(path)
    lines = [f"v-MSE at step {point['step']} (`{point['checkpoint']}`); the last two columns "
             "are each network's error relative to the Wiener denoiser's (means, no interval):",
             "", "| t | zeros | linear | Wiener | network (raw) | EMA | raw vs Wiener | "
             "EMA vs Wiener |", "|---|---|---|---|---|---|---|---|"]
    for r in point["rows"]:
        best = min(r[k] for k in ("zeros", "linear", "wiener", "model", "ema"))
        raw = f"**{r['model']:.4f}**" if r["model"] == best else f"{r['model']:.4f}"
        rel = {k: f"{100 * (r[k] / r['wiener'] - 1):+.1f} %" for k in ("model", "ema")}
        lines.append(f"| {r['t']} | {r['zeros']:.4f} | {r['linear']:.4f} | {r['wiener']:.4f} "
                     f"| {raw} | {r['ema']:.4f} | {rel['model']} | {rel['ema']} |")
    return "\n".join(lines)


def diffusion_denoising_with_ci(path: Path) -> str:
    point = _last_point(path)
    lines = [f"v-MSE at step {point['step']}; network minus Wiener with a 95 % CI from "
             "resampling held-out subjects (or recordings):", "",
             "| t | zeros | linear | Wiener | raw | EMA | raw - Wiener [95 % CI] | "
             "EMA - Wiener [95 % CI] |", "|---|---|---|---|---|---|---|---|"]
    for r in point["rows"]:
        best = min(r[k] for k in ("zeros", "linear", "wiener", "model", "ema"))
        raw = f"**{r['model']:.3f}**" if r["model"] == best else f"{r['model']:.3f}"
        ci = {k: f"{m['mean']:+.3f} [{m['ci_low']:+.3f}, {m['ci_high']:+.3f}]"
              for k, m in r["minus_wiener"].items()}
        lines.append(f"| {r['t']} | {r['zeros']:.3f} | {r['linear']:.3f} | {r['wiener']:.3f} | "
                     f"{raw} | {r['ema']:.3f} | {ci['model']} | {ci['ema']} |")
    subjects = point["rows"][0]["minus_wiener"]["model"]["subjects"]
    return "\n".join(lines + ["", f"({subjects} held-out subjects or recordings.)"])


def diffusion_generation(path: Path) -> str:
    point = _last_point(path)
    gen = point["generation"]
    ema = gen["ema"]
    lines = [f"Step {point['step']}, EMA weights, {ema['n_sequences']} generated windows. "
             "Mean |log10 band-power ratio| against half A (bold: closer than the 1/f fit):",
             "", "| band | generated | real (half B) | 1/f fit of A |", "|---|---|---|---|"]
    for band, value in ema["gen_vs_real"].items():
        cell = f"{value:.3f}"
        if value < ema["one_over_f_vs_real"][band]:
            cell = f"**{cell}**"
        lines.append(f"| {band} | {cell} | {ema['real_vs_real'][band]:.3f} | "
                     f"{ema['one_over_f_vs_real'][band]:.3f} |")
    mean_band = {k: statistics.mean(g["gen_vs_real"].values()) for k, g in gen.items()}
    lines += ["", f"- Alpha peak (excess over each spectrum's own 1/f fit, log10): real "
              f"{ema['alpha_excess_real']:.3f}, generated {ema['alpha_excess_generated']:.3f}.",
              f"- Amplitudes: KS statistic {ema['ks_gen']:.3f}, against {ema['ks_real']:.3f} for "
              f"real vs real. Kurtosis: real {ema['kurtosis_real']:.2f}, generated "
              f"{ema['kurtosis_generated']:.2f}.",
              f"- Mean band error over the five bands: EMA {mean_band['ema']:.2f}, raw weights "
              f"{mean_band['model']:.2f}."]
    return "\n".join(lines)


def diffusion_generation_brief(path: Path) -> str:
    """Both weights' generation checks in a few lines (mean over the five bands)."""
    point = _last_point(path)
    gen = point["generation"]
    first = next(iter(gen.values()))

    def band(g, key):
        return statistics.mean(g[key].values())

    return "\n".join([
        f"Generation at step {point['step']}, {first['n_sequences']} windows per weights:", "",
        "- mean band error: " + ", ".join(f"{_WEIGHTS[k]} {band(g, 'gen_vs_real'):.2f}"
                                          for k, g in gen.items())
        + f"; real vs real {band(first, 'real_vs_real'):.2f}, 1/f fit "
          f"{band(first, 'one_over_f_vs_real'):.2f};",
        "- alpha excess over 1/f (log10): " + ", ".join(
            f"{_WEIGHTS[k]} {g['alpha_excess_generated']:.2f}" for k, g in gen.items())
        + f"; real {first['alpha_excess_real']:.2f};",
        "- kurtosis: " + ", ".join(f"{_WEIGHTS[k]} {g['kurtosis_generated']:.1f}"
                                   for k, g in gen.items())
        + f"; real {first['kurtosis_real']:.2f}."])


_WEIGHTS = {"model": "raw", "ema": "EMA"}

PROBE_FEATURES = [("band_power", "band power"), ("random_init", "random-init latents"),
                  ("trained_ema", "trained latents, EMA"), ("trained_model", "trained latents, raw")]


def _probe_means(path: Path) -> dict:
    """(dataset, pipeline, metric) -> per-subject values (one probe seed: one per subject)."""
    values = defaultdict(list)
    for r in _csv(path):
        values[(r["dataset"], r["pipeline"], r["metric"])].append(float(r["value"]))
    return values


def _mean_sd(values: list[float], bold: bool = False) -> str:
    cell = f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"
    return f"**{cell}**" if bold else cell


def _probe_table(path: Path, columns: list[tuple[str, str, bool]]) -> str:
    """columns: (dataset, header, with AUROC). Bold: the best mean balanced accuracy."""
    v = _probe_means(path)
    head, rule = ["features"], ["---"]
    for dataset, header, auroc in columns:
        head += [header] + (["AUROC"] if auroc else [])
        rule += ["---"] * (2 if auroc else 1)
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(rule) + "|"]
    best = {d: max((p for p, _ in PROBE_FEATURES),
                   key=lambda p: statistics.mean(v[(d, p, "balanced_accuracy")]))
            for d, _, _ in columns}
    for pipeline, shown in PROBE_FEATURES:
        cells = [shown]
        for dataset, _, auroc in columns:
            cells.append(_mean_sd(v[(dataset, pipeline, "balanced_accuracy")],
                                  best[dataset] == pipeline))
            if auroc:
                cells.append(f"{statistics.mean(v[(dataset, pipeline, 'auroc')]):.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def diffusion_probe_gpu(path: Path) -> str:
    return _probe_table(path, [("eegmat", "eegmat (18 subjects, 2 classes)", True),
                               ("ssvep_exoskeleton", "ssvep_exoskeleton (12 subjects, 4 classes)",
                                False)])


def diffusion_probe_tiny(path: Path) -> str:
    return _probe_table(path, [("eegmat", "eegmat (18)", False),
                               ("ssvep_exoskeleton", "ssvep_exoskeleton (12)", False),
                               ("eegmmidb_baseline", "eegmmidb_baseline (108, eyes open/closed)",
                                False)])


# --- pretraining.md: representation objectives (issue 18) -----------------------------------

ARM_TEXT = {"recon": "reconstruction (pretrain_all's recipe)",
            "recon_block": "reconstruction, channel/time-block masks",
            "latent": "latent prediction, channel/time-block masks",
            "band_power": "band power of hidden patches, channel/time-block masks",
            "latent_band_power": "latent prediction + band power, channel/time-block masks"}
BUDGET_ORDER = ("1", "2", "4", "8", "all")


def _f(value, digits: int = 3) -> str:
    return "n/a" if value in ("", None) else f"{float(value):.{digits}f}"


def representation_runs(path: Path) -> str:
    """Per arm: its pretraining runs' held-out bars (mean and range over runs and corpora)."""
    rows = _csv(path)
    arms = list(dict.fromkeys(r["arm"] for r in rows))
    lines = ["| arm | runs | reconstruction / best trivial (eegmat, eegmmidb, muse, ssvep) | "
             "band power / visible-patch guess (same) | effective rank of 64 | collapsed | "
             "wall s (median) |", "|---|---|---|---|---|---|---|"]
    for arm in arms:
        sub = [r for r in rows if r["arm"] == arm]
        runs = {(r["without"], r["seed"]) for r in sub}

        def cell(key):
            vals = [float(r[key]) for r in sub if r["heldout_dataset"] in MULTICHANNEL
                    and r.get(key) not in ("", None)]
            if not vals:
                return "n/a"
            return f"{statistics.mean(vals):.3f} ({min(vals):.3f}-{max(vals):.3f})"

        per_run = {(r["without"], r["seed"]): r for r in sub}.values()
        ranks = [float(r["effective_rank"]) for r in per_run if r["effective_rank"] not in ("",)]
        walls = [float(r["wall_s"]) for r in per_run if r["wall_s"] not in ("",)]
        collapsed = sum(r["collapsed"] == "True" for r in per_run)
        lines.append(f"| {ARM_TEXT.get(arm, arm)} | {len(runs)} | {cell('model_vs_best_trivial')}"
                     f" | {cell('band_power_vs_channel_mean')} | "
                     + (f"{statistics.mean(ranks):.1f} ({min(ranks):.1f}-{max(ranks):.1f})"
                        if ranks else "n/a")
                     + f" | {collapsed} of {len(runs)} | "
                     + (f"{statistics.median(walls):.0f}" if walls else "n/a") + " |")
    return "\n".join(lines)


def representation_selection(path: Path) -> str:
    """What was chosen on selection subjects: each arm's mean selection score per layer."""
    rows = _csv(path)
    layers = sorted(k for k in rows[0] if k.startswith("selection_layer"))
    lines = ["| dataset | arm | features | runs | " + " | ".join(
        f"layer {k[len('selection_layer'):]}" for k in layers) + " | layer picked per run |",
        "|---|---|---|---|" + "---|" * len(layers) + "---|"]
    groups = defaultdict(list)
    for r in rows:
        groups[(r["dataset"], r["arm"], r.get("features", "raw"))].append(r)
    for (dataset, arm, features), sub in groups.items():
        # a family with fewer layers (the diffusion arm's 2 blocks) leaves the rest empty
        means = [statistics.mean(float(r[k]) for r in sub) if sub[0][k] else None
                 for k in layers]
        best = max(m for m in means if m is not None)
        cells = ["-" if m is None else f"**{m:.3f}**" if m == best else f"{m:.3f}"
                 for m in means]
        lines.append(f"| {dataset} | {arm} | {features.replace('_', ' ')} | {len(sub)} | "
                     + " | ".join(cells) + " | "
                     + ", ".join(r["layer"] for r in sub) + " |")
    return "\n".join(lines)


def _verdict(path: Path, control: str) -> str:
    rows = [r for r in _csv(path) if r["control"] == control]
    budgets = [b for b in BUDGET_ORDER if any(r["budget"] == b for r in rows)]
    lines = ["| dataset | arm | read-out (family) | runs vs control runs | " + " | ".join(
        f"{b} training subjects" if b != "all" else "all training subjects" for b in budgets)
        + " |", "|---|---|---|---|" + "---|" * len(budgets)]
    groups = defaultdict(dict)
    for r in rows:
        groups[(r["dataset"], r["arm"], r["readout"])][r["budget"]] = r
    for (dataset, arm, readout), by_budget in groups.items():
        any_row = next(iter(by_budget.values()))
        cells = []
        for b in budgets:
            r = by_budget.get(b)
            if r is None:
                cells.append("")
                continue
            mark = "**" if float(r["p_holm"]) < 0.05 else ""
            cells.append(f"{mark}{float(r['diff']):+.3f} [{float(r['ci_low']):+.3f}, "
                         f"{float(r['ci_high']):+.3f}] p {float(r['p_holm']):.2g}{mark}")
        lines.append(f"| {dataset} | {arm} | {readout.replace('_', ' ')} "
                     f"({any_row['family']}) | {any_row['n_runs']} vs "
                     f"{any_row['n_control_runs']} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def representation_vs_random(path: Path) -> str:
    return _verdict(path, "random init")


def representation_vs_band_power(path: Path) -> str:
    return _verdict(path, "band power, per-subject normalised")


def representation_scores(path: Path) -> str:
    """Mean balanced accuracy on report subjects, all training subjects: every arm's read-outs
    beside the random network and the band-power baselines."""
    rows = [r for r in _csv(path) if r["subset"] == "report" and r["budget"] == "all"]
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    keys = list(dict.fromkeys((r["arm"], r["readout"]) for r in rows))
    lines = ["| arm | read-out | " + " | ".join(datasets) + " |",
             "|---|---|" + "---|" * len(datasets)]
    for arm, readout in keys:
        cells = []
        for d in datasets:
            sub = [r for r in rows if r["dataset"] == d and r["arm"] == arm
                   and r["readout"] == readout]
            per_run = defaultdict(list)
            for r in sub:
                per_run[r["run"]].append(float(r["balanced_accuracy"]))
            means = [statistics.mean(v) for v in per_run.values()]
            cells.append("" if not means else f"{statistics.mean(means):.3f}" + (
                f" ({min(means):.3f}-{max(means):.3f})" if len(means) > 1 else ""))
        lines.append(f"| {arm} | {readout.replace('_', ' ')} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def subject_norm(*paths: Path) -> str:
    """Baselines with and without per-subject normalisation: benchmarks/subject_norm.py's
    summaries (one per run of it), as that script prints them, in one table."""
    import pandas as pd

    return subject_norm_script.markdown(pd.concat([pd.read_csv(p) for p in paths]))


def reconstruction_report(path: Path) -> str:
    """The reconstruction bar of leave-dataset-out runs on subjects that chose nothing."""
    rows = _json(path)["rows"]
    lines = ["| left-out dataset | report subjects (selection subjects excluded) | runs | "
             "best trivial | model / best trivial, per run | per subject (model - best "
             "trivial) / zeros [95% CI, subjects x runs] |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['dataset']} | {r['report_subjects']} ({r['selection_subjects']}) | "
                     f"{r['runs']} | {r['best_trivial']} | "
                     + ", ".join(f"{v:.3f}" for v in r["model_vs_best_trivial_per_run"])
                     + f" | {r['diff_vs_zeros']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}] |")
    return "\n".join(lines)


def finetune_vs_scratch(path: Path) -> str:
    """Fine-tuned vs from scratch per dataset (benchmarks/finetune_vs_scratch.py's table)."""
    import pandas as pd

    return finetune_vs_scratch_script.markdown(pd.read_csv(path))

"""Did the diffusion denoiser learn? v-MSE per range of t on held-out subjects beside baselines.

    python benchmarks/diffusion_checks.py runs/pretrain_diffusion/<time> [--per-bin 200]
    python benchmarks/diffusion_checks.py <run> --snapshots --generate 64   # against step

Held out: the run's validation subjects and the subjects it excluded (``exclude_groups``).
The run directory gives the model (``checkpoints/last.ckpt``: raw and EMA weights; else its
checkpoint folder, ``checkpoint/``, or an old run's ``model.pt``) and its config (``.hydra/config.yaml``), so the held-out split is the run's.
Predictors of v at x_t = a x0 + s eps (a = sqrt(abar_t), s = sqrt(1 - abar_t)), all turned
into v as v = (a x_t - x0_hat) / s:

- ``zeros``: v = 0 (what the zero-initialised model predicts before training);
- ``linear``: x0_hat = beta x_t with each channel's own best scalar
  beta = a var(x0) / (a^2 var(x0) + s^2), var(x0) estimated from that x_t as
  (var(x_t) - s^2) / a^2, bounded by the training windows' 99th percentile;
- ``wiener``: x0_hat = H(f) x_t in frequency, H = a P / (a^2 P + s^2), P the training
  windows' average power spectrum (model space);
- ``model`` and ``ema``: the network.

Generation (``--generate N``, raw weights): N held-out 5 s sequences (real, half A), as
many of other held-out sequences (real, half B) and N sequences drawn by the full DDPM chain
for the channels of half A (their sensor features). Per band (delta 1-4, theta 4-8, alpha
8-13, beta 13-30, gamma 30-45 Hz): |log10| of the ratio of average band powers, generated vs
A, beside B vs A (the floor) and a 1/f fit of A's spectrum vs A (a surrogate with no
rhythms); the alpha peak as A's and the generated spectrum's excess over their own 1/f fit;
amplitudes by the KS statistic and kurtosis. ``--figure PATH`` draws real and generated
traces and spectra.

Against training step (``--snapshots``): every ``checkpoints/step-*.ckpt`` the run kept
(``checkpoint_keep_every_n_steps``) and its ``last.ckpt`` are scored the same way, raw and EMA
weights, on the same held-out sequences and noise; ``--step-figure PATH`` draws v-MSE at mid t
and the band-power error against step beside the baselines.

Writes ``diffusion_checks.json`` (or ``diffusion_checks_by_step.json``) into the run directory
and prints Markdown tables. ``--device cuda`` runs the networks on a GPU.
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
import torch

from brainfm.checkpoint import from_pretrained, read_ema_state
from brainfm.data.datamodule import BrainDataModule
from brainfm.data.loading import batch_loader
from brainfm.models.diffusion_denoiser import DiffusionDenoiser
from brainfm.run_folder import run_checkpoint
from brainfm.tasks.ddpm import CosineSchedule, inverse_staged_mu_law, sample, staged_mu_law

BINS = [(0, 10), (10, 20), (20, 30), (30, 40), (40, 50)]
MID_T = "20-29"


def _sequences(dm: BrainDataModule, split: str, crop: int, limit: int, seed: int):
    """(M, crop) model-space sequences, (M, 8) sensor features and (M,) subject codes of
    real channels."""
    xs, ss, us = [], [], []
    for batch in batch_loader(dm.splits[split], 16, shuffle=True, seed=seed):
        x = batch["x"].reshape(*batch["x"].shape[:2], -1)[..., :crop]
        valid = batch["channel_mask"].bool()
        xs.append(staged_mu_law(x[valid].float()))
        ss.append(batch["sensors"][valid].float())
        us.append(batch["subject"][:, None].expand(valid.shape)[valid])
        if sum(len(v) for v in xs) >= limit:
            break
    x, s, u = torch.cat(xs), torch.cat(ss), torch.cat(us)
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:limit]
    return x[idx], s[idx], u[idx]


def _against_wiener(errors: torch.Tensor, wiener: torch.Tensor, subjects: torch.Tensor):
    """Mean of (network - Wiener) per-sequence squared error, with a 95 % CI from resampling
    subjects (sequences of one subject are not independent)."""
    from brainfm.bench.stats import hierarchical_bootstrap

    diff = (errors - wiener).numpy()
    codes = subjects.numpy()
    per_subject = np.array([diff[codes == c].mean() for c in np.unique(codes)])
    est, lo, hi = hierarchical_bootstrap(per_subject[:, None])
    return {"mean": est, "ci_low": lo, "ci_high": hi, "subjects": int(len(per_subject))}


def _lightning_state(path: Path) -> dict | None:
    """A Lightning checkpoint's state dict, read without unpickling objects (None if it
    holds any)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    except Exception as err:  # a checkpoint holding objects is not read at all
        print(f"({path} is not tensor-only, skipped: {err})")
        return None


def _prefixed(state: dict, prefix: str) -> dict:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def nets_from_checkpoint(path: Path, model_cfg: dict) -> dict[str, torch.nn.Module]:
    """``model`` (raw) and ``ema`` weights of a run's Lightning checkpoint."""
    state = _lightning_state(path)
    if state is None:
        return {}
    nets = {}
    for name, prefix in (("model", "model."), ("ema", "ema.")):
        weights = _prefixed(state, prefix)
        if weights:
            net = DiffusionDenoiser(**{k: v for k, v in model_cfg.items() if k != "family"})
            net.load_state_dict(weights)
            nets[name] = net.eval()
    return nets


def _run_nets(run: Path, model_cfg: dict) -> dict[str, torch.nn.Module]:
    """The raw and EMA weights of the run's last checkpoint; the exported ones (its
    checkpoint folder, or an old run's model.pt: raw only) where there is no readable
    checkpoint."""
    last = run / "checkpoints" / "last.ckpt"
    nets = nets_from_checkpoint(last, model_cfg) if last.exists() else {}
    if nets:
        return nets
    exported = run_checkpoint(run)
    nets = {"model": from_pretrained(exported).eval()}
    if read_ema_state(exported) is not None:
        nets["ema"] = from_pretrained(exported, weights="ema").eval()
    return nets


def snapshots(run: Path) -> list[tuple[int, Path]]:
    """(step, path) of every kept ``step-N.ckpt`` and of ``last.ckpt``, by step."""
    found = {}
    for path in sorted((run / "checkpoints").glob("step-*.ckpt")):
        found[int(re.search(r"step-(\d+)", path.name).group(1))] = path
    last = run / "checkpoints" / "last.ckpt"
    if last.exists():
        step = torch.load(last, map_location="cpu", weights_only=True,
                          mmap=True).get("global_step")  # mapped: only the step is read
        if step is not None and int(step) not in found:
            found[int(step)] = last
    return sorted(found.items())


class HeldOut:
    """The run's held-out sequences, noise and the baselines' predictions, drawn once so
    that every network (and every snapshot) is scored on the same inputs."""

    def __init__(self, run: Path, per_bin: int, crop: int, seed: int, device: str):
        from omegaconf import OmegaConf

        cfg = OmegaConf.load(run / ".hydra" / "config.yaml")
        self.cfg, self.device = cfg, device
        d = cfg.data
        stores = [f"{n}.{d.view}" if d.get("view") else n for n in d.datasets]
        dm = BrainDataModule(stores, store_root=cfg.store_root, patch_len=cfg.model.patch_len,
                             batch_size=16, val_fraction=d.val_fraction, seed=cfg.seed,
                             max_abs=d.max_abs, max_abs_relative=d.get("max_abs_relative"),
                             mix=d.get("mix"), mix_cap=d.get("mix_cap"),
                             bucket_channels=d.bucket_channels,
                             test_groups=list(d.get("exclude_groups") or []))
        dm.setup()
        self.sch = CosineSchedule(cfg.task.n_steps, cfg.task.prediction_type)
        train_x, _, _ = _sequences(dm, "train", crop, 2000, seed)
        power = (torch.fft.rfft(train_x, norm="ortho").abs() ** 2).mean(0)     # P(f)
        var_max = float(train_x.var(-1).quantile(0.99))  # bound the estimate where a ~ 0
        # held out: the validation subjects and any the run excluded (exclude_groups)
        held = [_sequences(dm, split, crop, per_bin * len(BINS), seed + 1)
                for split in ("val", "test") if len(dm.splits.get(split, ()))]
        x0, sensors, subjects = (torch.cat(parts) for parts in zip(*held))
        keep = torch.randperm(len(x0), generator=torch.Generator().manual_seed(seed + 1))
        keep = keep[:per_bin * len(BINS)]
        self.x0, self.sensors, self.subjects = x0[keep], sensors[keep], subjects[keep]
        g = torch.Generator().manual_seed(seed + 2)
        self.bins = []
        for lo, hi in BINS:
            t = torch.randint(lo, hi, (len(self.x0),), generator=g)
            noise = torch.randn(self.x0.shape, generator=g)
            x_t = self.sch.add_noise(self.x0, noise, t)
            v = self.sch.target(self.x0, noise, t)
            a = self.sch.alphas_cumprod[t].sqrt()[:, None]
            s = (1 - self.sch.alphas_cumprod[t]).sqrt()[:, None]
            var0 = ((x_t.var(-1, keepdim=True) - s ** 2) / a ** 2).clamp(0, var_max)
            x0_lin = a * var0 / (a ** 2 * var0 + s ** 2) * x_t
            gain = a * power / (a ** 2 * power + s ** 2)
            x0_wie = torch.fft.irfft(gain * torch.fft.rfft(x_t, norm="ortho"),
                                     n=x_t.shape[-1], norm="ortho")
            baselines = {"zeros": torch.zeros_like(v), "linear": (a * x_t - x0_lin) / s,
                         "wiener": (a * x_t - x0_wie) / s}
            self.bins.append({"t_range": f"{lo}-{hi - 1}", "t": t, "x_t": x_t, "v": v,
                              "wiener_errors": ((baselines["wiener"] - v) ** 2).mean(-1),
                              "baselines": {k: float(((p - v) ** 2).mean())
                                            for k, p in baselines.items()}})

    @torch.no_grad()
    def denoising(self, nets: dict) -> list[dict]:
        """v-MSE per range of t: the baselines and each network."""
        rows = []
        for b in self.bins:
            row = {"t": b["t_range"], **b["baselines"]}
            for name, net in nets.items():
                net.to(self.device)
                pred = torch.cat([net.denoise(b["x_t"][i:i + 256].to(self.device),
                                              b["t"][i:i + 256].to(self.device),
                                              self.sensors[i:i + 256].to(self.device)).cpu()
                                  for i in range(0, len(b["x_t"]), 256)])
                errors = ((pred - b["v"]) ** 2).mean(-1)
                row[name] = float(errors.mean())
                row.setdefault("minus_wiener", {})[name] = _against_wiener(
                    errors, b["wiener_errors"], self.subjects)
            rows.append(row)
        return rows

    @torch.no_grad()
    def generation(self, net, n: int, seed: int) -> tuple[dict, np.ndarray, np.ndarray]:
        """Band powers, alpha peak and amplitudes of ``n`` sequences drawn by the full DDPM
        chain for the channels of held-out half A, beside half B and a 1/f fit of A."""
        real_a, sens_a = self.x0[:n], self.sensors[:n].to(self.device)
        real_b = self.x0[n:2 * n]
        net.to(self.device)
        fake = sample(lambda x, t: net.denoise(x, t, sens_a), tuple(real_a.shape), self.sch,
                      "ddpm", generator=torch.Generator().manual_seed(seed),
                      device=self.device).cpu()
        to_units = lambda v: inverse_staged_mu_law(v).numpy()  # noqa: E731
        report = generation_report(to_units(real_a), to_units(real_b), to_units(fake),
                                   float(self.cfg.model.sfreq))
        return report, to_units(real_a), to_units(fake)


def denoising_table(rows: list[dict]) -> str:
    names = [k for k in rows[0] if k not in ("t", "minus_wiener")]
    nets = list(rows[0].get("minus_wiener", {}))
    lines = ["| t | " + " | ".join(names) + "".join(f" | {n} - wiener [95 % CI]" for n in nets)
             + " |", "|---" * (len(names) + len(nets) + 1) + "|"]
    for r in rows:
        diffs = "".join(f" | {d['mean']:+.4f} [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}]"
                        for d in (r["minus_wiener"][n] for n in nets))
        lines.append("| " + r["t"] + " | " + " | ".join(f"{r[k]:.4f}" for k in names)
                     + diffs + " |")
    if nets:
        lines.append(f"(CI: resampling the {rows[0]['minus_wiener'][nets[0]]['subjects']} "
                     "held-out subjects)")
    return "\n".join(lines)


def generation_table(g: dict) -> str:
    lines = ["| band | generated vs real | real vs real | 1/f fit vs real |", "|---|---|---|---|"]
    lines += [f"| {band} | {g['gen_vs_real'][band]:.3f} | {g['real_vs_real'][band]:.3f} "
              f"| {g['one_over_f_vs_real'][band]:.3f} |" for band in BANDS]
    lines.append(f"alpha excess over 1/f (log10): real {g['alpha_excess_real']:.3f}, "
                 f"generated {g['alpha_excess_generated']:.3f}; KS {g['ks_gen']:.3f} (real vs "
                 f"real {g['ks_real']:.3f}); kurtosis real {g['kurtosis_real']:.2f}, generated "
                 f"{g['kurtosis_generated']:.2f}")
    return "\n".join(lines)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--per-bin", type=int, default=200, help="held-out sequences per t range")
    ap.add_argument("--crop", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--generate", type=int, default=0,
                    help="sequences to generate for the spectral checks (0: none)")
    ap.add_argument("--figure", type=Path, default=None,
                    help="real vs generated traces and spectra (last network scored)")
    ap.add_argument("--snapshots", action="store_true",
                    help="score every kept step-N.ckpt and last.ckpt (raw and EMA)")
    ap.add_argument("--step-figure", type=Path, default=None)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    held = HeldOut(args.run, args.per_bin, args.crop, args.seed, args.device)
    model_cfg = {k: v for k, v in dict(held.cfg.model).items()}
    points = (snapshots(args.run) if args.snapshots else [(None, None)])
    out = {"run": str(args.run), "held_out_sequences_per_bin": len(held.x0),
           "crop": args.crop, "device": args.device, "points": []}
    for step, path in points:
        nets = (nets_from_checkpoint(path, model_cfg) if path is not None
                else _run_nets(args.run, model_cfg))
        point = {"step": step, "checkpoint": None if path is None else path.name,
                 "rows": held.denoising(nets)}
        print(f"\n## step {step}" if step is not None else "", flush=True)
        print(denoising_table(point["rows"]), flush=True)
        if args.generate:
            point["generation"] = {}
            for name, net in nets.items():
                report, real, fake = held.generation(net, args.generate, args.seed + 3)
                point["generation"][name] = report
                print(f"\ngeneration, {name} weights:\n" + generation_table(report), flush=True)
        out["points"].append(point)
    if args.figure and args.generate:
        draw(args.figure, real, fake, float(held.cfg.model.sfreq))
    if args.step_figure and args.snapshots:
        draw_by_step(args.step_figure, out["points"])
    if not args.snapshots:  # the single-point layout older readers expect
        out |= {"rows": out["points"][0]["rows"],
                **({"generation": out["points"][0]["generation"].get("model")}
                   if args.generate else {})}
    name = "diffusion_checks_by_step.json" if args.snapshots else "diffusion_checks.json"
    (args.run / name).write_text(json.dumps(out, indent=1))
    return out


BANDS = {"delta": (1, 4), "theta": (4, 8), "alpha": (8, 13), "beta": (13, 30),
         "gamma": (30, 45)}


def _spectrum(x: np.ndarray, sfreq: float):
    from scipy.signal import welch

    f, p = welch(x, fs=sfreq, nperseg=min(256, x.shape[-1]), axis=-1)
    return f, p.mean(0)


def _band_powers(f, p) -> dict[str, float]:
    return {k: float(p[(f >= lo) & (f < hi)].sum()) for k, (lo, hi) in BANDS.items()}


def _one_over_f(f, p):
    """A power law fitted to the spectrum between 1 and 45 Hz (log-log least squares)."""
    keep = (f >= 1) & (f <= 45)
    slope, icpt = np.polyfit(np.log10(f[keep]), np.log10(p[keep]), 1)
    fit = np.zeros_like(p)
    fit[f > 0] = 10 ** (icpt + slope * np.log10(f[f > 0]))
    return fit


def generation_report(real_a, real_b, fake, sfreq) -> dict:
    from scipy.stats import kurtosis, ks_2samp

    f, pa = _spectrum(real_a, sfreq)
    _, pb = _spectrum(real_b, sfreq)
    _, pg = _spectrum(fake, sfreq)
    ba, bb, bg = _band_powers(f, pa), _band_powers(f, pb), _band_powers(f, pg)
    bs = _band_powers(f, _one_over_f(f, pa))
    ratio = lambda x, y: {k: abs(float(np.log10(x[k] / y[k]))) for k in BANDS}  # noqa: E731
    alpha = (f >= 8) & (f < 13)
    excess = lambda p: float(np.log10(p[alpha].sum() / _one_over_f(f, p)[alpha].sum()))  # noqa
    rng = np.random.default_rng(0)
    pick = lambda v: rng.choice(v.ravel(), min(v.size, 20000), replace=False)  # noqa: E731
    return {"gen_vs_real": ratio(bg, ba), "real_vs_real": ratio(bb, ba),
            "one_over_f_vs_real": ratio(bs, ba),
            "alpha_excess_real": excess(pa), "alpha_excess_generated": excess(pg),
            "ks_gen": float(ks_2samp(pick(fake), pick(real_a)).statistic),
            "ks_real": float(ks_2samp(pick(real_b), pick(real_a)).statistic),
            "kurtosis_real": float(kurtosis(real_a.ravel())),
            "kurtosis_generated": float(kurtosis(fake.ravel())),
            "n_sequences": int(len(real_a))}


def draw(path, real, fake, sfreq, n=3) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(n + 1, 1, figsize=(9, 2 * n + 3))
    t = np.arange(real.shape[-1]) / sfreq
    for i in range(n):
        axes[i].plot(t, 100 * real[i], lw=0.6, label="real (held-out)")
        axes[i].plot(t, 100 * fake[i], lw=0.6, label="generated, same channel")
        axes[i].set_ylabel("uV")
    axes[0].legend(loc="upper right", fontsize=7)
    axes[n - 1].set_xlabel("s")
    for x, label in ((real, "real"), (fake, "generated")):
        f, p = _spectrum(x, sfreq)
        axes[n].semilogy(f, p, label=label)
    axes[n].set_xlim(0, 60)
    axes[n].set_xlabel("Hz")
    axes[n].set_ylabel("power")
    axes[n].legend(fontsize=7)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)


def draw_by_step(path, points: list[dict]) -> None:
    """Against step: the network's v-MSE relative to the Wiener denoiser's at low and mid t
    (below 1 beats it), and the mean band-power error of generated windows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [p["step"] for p in points]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for t_range, color in (("0-9", "C0"), ("10-19", "C1"), (MID_T, "C2")):
        rows = [next(r for r in p["rows"] if r["t"] == t_range) for p in points]
        for name, style in (("model", "-o"), ("ema", "--s")):
            if name in rows[0]:
                axes[0].plot(steps, [r[name] / r["wiener"] for r in rows], style, color=color,
                             ms=4, label=f"t {t_range}, {'raw' if name == 'model' else 'EMA'}")
    axes[0].axhline(1.0, color="grey", lw=1)
    axes[0].annotate("Wiener denoiser (training spectrum)", (steps[-1], 1.0), fontsize=7,
                     va="bottom", ha="right")
    axes[0].set_xlabel("training step")
    axes[0].set_ylabel("held-out v-MSE / Wiener's")
    axes[0].legend(fontsize=6, ncol=3)
    if "generation" in points[0]:
        mean = lambda d: float(np.mean(list(d.values())))  # noqa: E731
        for name, style in (("model", "-o"), ("ema", "-s")):
            if name in points[0]["generation"]:
                axes[1].plot(steps, [mean(p["generation"][name]["gen_vs_real"]) for p in points],
                             style, label=f"generated ({name})")
        g0 = points[-1]["generation"][next(iter(points[-1]["generation"]))]
        axes[1].axhline(mean(g0["real_vs_real"]), ls="--", color="grey", lw=1)
        axes[1].annotate("real vs real", (steps[-1], mean(g0["real_vs_real"])), fontsize=7,
                         va="bottom", ha="right")
        axes[1].axhline(mean(g0["one_over_f_vs_real"]), ls="-.", color="grey", lw=1)
        axes[1].annotate("1/f fit vs real", (steps[-1], mean(g0["one_over_f_vs_real"])),
                         fontsize=7, va="bottom", ha="right")
        axes[1].set_yscale("log")
        axes[1].set_xlabel("training step")
        axes[1].set_ylabel("mean |log10 band-power ratio|, delta-gamma")
        axes[1].legend(fontsize=7)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)


if __name__ == "__main__":
    main()

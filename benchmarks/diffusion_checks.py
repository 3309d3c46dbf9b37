"""Did the diffusion denoiser learn? v-MSE per range of t on held-out subjects beside baselines.

    python benchmarks/diffusion_checks.py runs/pretrain_diffusion/<time> [--per-bin 200]

The run directory gives the model (``model.pt``: raw weights; ``checkpoints/last.ckpt``: the
EMA copy too) and its config (``.hydra/config.yaml``), so the held-out split is the run's.
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

Writes ``diffusion_checks.json`` into the run directory and prints Markdown tables.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from brainfm.checkpoint import from_pretrained
from brainfm.data.datamodule import BrainDataModule
from brainfm.data.loading import batch_loader
from brainfm.tasks.ddpm import CosineSchedule, inverse_staged_mu_law, sample, staged_mu_law

BINS = [(0, 10), (10, 20), (20, 30), (30, 40), (40, 50)]


def _sequences(dm: BrainDataModule, split: str, crop: int, limit: int, seed: int):
    """(M, crop) model-space sequences and (M, 8) sensor features of real channels."""
    xs, ss = [], []
    for batch in batch_loader(dm.splits[split], 16, shuffle=True, seed=seed):
        x = batch["x"].reshape(*batch["x"].shape[:2], -1)[..., :crop]
        valid = batch["channel_mask"].bool()
        xs.append(staged_mu_law(x[valid].float()))
        ss.append(batch["sensors"][valid].float())
        if sum(len(v) for v in xs) >= limit:
            break
    x, s = torch.cat(xs), torch.cat(ss)
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:limit]
    return x[idx], s[idx]


def _ema_model(run: Path, model):
    """The EMA weights from the run's last Lightning checkpoint, if it can be read safely."""
    ckpt = run / "checkpoints" / "last.ckpt"
    if not ckpt.exists():
        return None
    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    except Exception as err:  # a checkpoint holding objects is not read at all
        print(f"(no EMA: {ckpt} is not tensor-only: {err})")
        return None
    ema = {k[len("ema."):]: v for k, v in state.items() if k.startswith("ema.")}
    if not ema:
        return None
    import copy

    out = copy.deepcopy(model)
    out.load_state_dict(ema)
    return out.eval()


@torch.no_grad()
def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--per-bin", type=int, default=200, help="held-out sequences per t range")
    ap.add_argument("--crop", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--generate", type=int, default=0,
                    help="sequences to generate for the spectral checks (0: none)")
    ap.add_argument("--figure", type=Path, default=None)
    args = ap.parse_args(argv)
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(args.run / ".hydra" / "config.yaml")
    d = cfg.data
    stores = [f"{n}.{d.view}" if d.get("view") else n for n in d.datasets]
    dm = BrainDataModule(stores, store_root=cfg.store_root, patch_len=cfg.model.patch_len,
                         batch_size=16, val_fraction=d.val_fraction, seed=cfg.seed,
                         max_abs=d.max_abs, max_abs_relative=d.get("max_abs_relative"),
                         mix=d.get("mix"), mix_cap=d.get("mix_cap"),
                         bucket_channels=d.bucket_channels)
    dm.setup()
    model = from_pretrained(args.run / "model.pt").eval()
    nets = {"model": model}
    ema = _ema_model(args.run, model)
    if ema is not None:
        nets["ema"] = ema
    sch = CosineSchedule(cfg.task.n_steps, cfg.task.prediction_type)
    train_x, _ = _sequences(dm, "train", args.crop, 2000, args.seed)
    power = (torch.fft.rfft(train_x, norm="ortho").abs() ** 2).mean(0)     # P(f)
    var_max = float(train_x.var(-1).quantile(0.99))  # bound the estimate where a ~ 0
    x0, sensors = _sequences(dm, "val", args.crop, args.per_bin * len(BINS), args.seed + 1)
    g = torch.Generator().manual_seed(args.seed + 2)
    rows = []
    for lo, hi in BINS:
        t = torch.randint(lo, hi, (len(x0),), generator=g)
        noise = torch.randn(x0.shape, generator=g)
        x_t = sch.add_noise(x0, noise, t)
        v = sch.target(x0, noise, t)
        a = sch.alphas_cumprod[t].sqrt()[:, None]
        s = (1 - sch.alphas_cumprod[t]).sqrt()[:, None]
        var0 = ((x_t.var(-1, keepdim=True) - s ** 2) / a ** 2).clamp(0, var_max)
        x0_lin = a * var0 / (a ** 2 * var0 + s ** 2) * x_t
        gain = a * power / (a ** 2 * power + s ** 2)
        x0_wie = torch.fft.irfft(gain * torch.fft.rfft(x_t, norm="ortho"), n=x_t.shape[-1],
                                 norm="ortho")
        preds = {"zeros": torch.zeros_like(v), "linear": (a * x_t - x0_lin) / s,
                 "wiener": (a * x_t - x0_wie) / s}
        for name, net in nets.items():
            preds[name] = torch.cat([net.denoise(x_t[i:i + 64], t[i:i + 64],
                                                 sensors[i:i + 64])
                                     for i in range(0, len(x_t), 64)])
        row = {"t": f"{lo}-{hi - 1}", **{k: float(((p - v) ** 2).mean())
                                         for k, p in preds.items()}}
        rows.append(row)
    names = list(rows[0])[1:]
    lines = ["| t | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    lines += ["| " + r["t"] + " | " + " | ".join(f"{r[k]:.4f}" for k in names) + " |"
              for r in rows]
    print("\n".join(lines))
    out = {"run": str(args.run), "held_out_sequences_per_bin": len(x0), "crop": args.crop,
           "rows": rows}
    if args.generate:
        real_a, sens_a = x0[:args.generate], sensors[:args.generate]
        real_b = x0[args.generate:2 * args.generate]
        fake = sample(lambda x, t: model.denoise(x, t, sens_a), tuple(real_a.shape), sch,
                      "ddpm", generator=torch.Generator().manual_seed(args.seed + 3))
        to_units = lambda v: inverse_staged_mu_law(v).numpy()  # noqa: E731
        out["generation"] = generation_report(to_units(real_a), to_units(real_b),
                                              to_units(fake), float(cfg.model.sfreq))
        g = out["generation"]
        print("\n| band | generated vs real | real vs real | 1/f fit vs real |")
        print("|---|---|---|---|")
        for band in BANDS:
            print(f"| {band} | {g['gen_vs_real'][band]:.3f} | {g['real_vs_real'][band]:.3f} "
                  f"| {g['one_over_f_vs_real'][band]:.3f} |")
        print(f"alpha excess over 1/f (log10): real {g['alpha_excess_real']:.3f}, generated "
              f"{g['alpha_excess_generated']:.3f}; KS {g['ks_gen']:.3f} (real vs real "
              f"{g['ks_real']:.3f}); kurtosis real {g['kurtosis_real']:.2f}, generated "
              f"{g['kurtosis_generated']:.2f}")
        if args.figure:
            draw(args.figure, to_units(real_a), to_units(fake), float(cfg.model.sfreq))
    (args.run / "diffusion_checks.json").write_text(json.dumps(out, indent=1))
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


if __name__ == "__main__":
    main()

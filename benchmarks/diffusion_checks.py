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

Writes ``diffusion_checks.json`` into the run directory and prints a Markdown table.
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
from brainfm.tasks.ddpm import CosineSchedule, staged_mu_law

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
    (args.run / "diffusion_checks.json").write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()

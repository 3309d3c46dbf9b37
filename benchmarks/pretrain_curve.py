"""The pretraining curve of ``experiment=pretrain_all`` on CPU, against predicting zeros.

Runs ``brainfm-pretrain experiment=pretrain_all`` (every shared dataset, the CPU-sized
model), then summarises its metrics.csv: the masked-patch MSE as a fraction of the all-zeros
predictor's MSE on the same hidden patches (< 1 = better than zeros), on training batches and
per dataset on held-out subjects/recordings.

    python benchmarks/pretrain_curve.py    # raw rows -> benchmarks/results/pretrain_curve.json

The raw rows (metrics.csv of the run, the overrides and the wall time) are written so that a
generated block (benchmarks/docs_blocks.py) can render ``render``'s table from them.
"""
from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--store-root", default="stores")
    p.add_argument("--out", type=Path, default=HERE / "results" / "pretrain_curve.json")
    p.add_argument("overrides", nargs="*", help="extra Hydra overrides")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        cmd = [str(Path(sys.executable).with_name("brainfm-pretrain")),
               "experiment=pretrain_all", f"store_root={args.store_root}",
               f"hydra.run.dir={run}", "trainer.enable_progress_bar=false", *args.overrides]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        seconds = time.perf_counter() - t0
        rows = list(csv.DictReader(open(run / "metrics.csv")))
    text = render(rows, seconds, args.overrides)
    print(text)
    args.out.write_text(json.dumps({"overrides": args.overrides, "seconds": seconds,
                                    "rows": rows}, indent=1))
    print(f"raw rows: {args.out}")
    return 0


def render(rows: list[dict], seconds: float, overrides) -> str:
    train = [(int(r["step"]), float(r["train/mse_vs_zero"])) for r in rows
             if r.get("train/mse_vs_zero")]
    first = sum(v for _, v in train[:10]) / min(10, len(train))
    last = sum(v for _, v in train[-10:]) / min(10, len(train))
    val_rows = [r for r in rows if r.get("val/mse_vs_zero")]
    names = sorted(k for k in rows[0] if k.startswith("val_by_dataset/"))
    lines = [f"`brainfm-pretrain experiment=pretrain_all {' '.join(overrides)}`".replace(" `", "`"),
             f"({train[-1][0] + 1} steps in {seconds:.0f} s including store checks and start-up):",
             "", f"- training batches, masked MSE / zeros-predictor MSE: {first:.3f} over the "
             f"first 10 logged steps -> {last:.3f} over the last 10", "",
             "| validation step | all | " + " | ".join(n.split("/")[1].replace("_mse_vs_zero", "")
                                                     for n in names) + " |",
             "|---|---|" + "---|" * len(names)]
    for r in val_rows:
        lines.append(f"| {r['step']} | {float(r['val/mse_vs_zero']):.3f} | " + " | ".join(
            f"{float(r[n]):.3f}" if r.get(n) else "-" for n in names) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

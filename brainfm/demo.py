"""brainfm-demo (``make demo``): the whole path on the embedded real sample, one command per
stage, each printed before it runs so the same can be done on other data and at full size.

1. brainfm-prep      the 4-subject eegmat sample (rest vs mental arithmetic) -> corpus store
2. brainfm-pretrain  a tiny criss-cross model, masked-patch pretraining, one subject held out;
                     says whether it beats the trivial predictors on that subject
3. brainfm-export    the run -> a checkpoint folder (model.safetensors, config.json, card)
4. brainfm-embed     the checkpoint folder + the dataset -> per-window embeddings (Parquet)
5. brainfm-bench     leave-one-subject-out: linear probe and fine-tuning of the checkpoint,
                     the same network with random weights, and classical baselines (CSP+LDA,
                     filter-bank tangent space)
6. a results table and a plot (demo.png), with where every output is.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path


class DemoError(RuntimeError):
    """A stage failed; its own output above says why."""


def _executable(command: str) -> str:
    """The entry point installed beside this Python (a venv's bin/), else on PATH."""
    beside = Path(sys.executable).with_name(command)
    if beside.exists():
        return str(beside)
    found = shutil.which(command)
    if not found:
        raise DemoError(f"{command} is not installed beside {sys.executable} nor on PATH; "
                        "install brainfm (make install, or pip install .)")
    return found


def _stage(number: int, title: str, command: list[str]) -> float:
    """Print the stage and its command, run it (its output shows), return its seconds."""
    print(f"\n[{number}/5] {title}\n$ {shlex.join(command)}", flush=True)
    t0 = time.perf_counter()
    done = subprocess.run([_executable(command[0]), *command[1:]])
    if done.returncode:
        raise DemoError(f"stage {number} ({command[0]}) failed with exit code "
                        f"{done.returncode}; its messages are above")
    return time.perf_counter() - t0


def _heldout_verdict(result: dict) -> tuple[bool, list[str]]:
    """Whether the pretrained model beat the best trivial predictor, in plain words; the
    verdict is brainfm-bench's (:func:`brainfm.bench.pretrained.pretraining_gate`: every
    multichannel held-out dataset must be below 1; single-channel ones are shown, not
    judged)."""
    from .bench.pretrained import pretraining_gate

    failing = pretraining_gate({"training": result})
    if failing is None:
        return False, ["  no held-out figures in result.json: the model was not checked"]
    lines = []
    for name, row in result["heldout"].items():
        ratio = row["model_vs_best_trivial"]
        if name in failing:
            verdict = ("the model does NOT beat the trivial predictors (try more steps: "
                       "trainer.max_steps=600, or experiment=pretrain_all on more data)")
        elif row.get("multichannel"):
            verdict = "the model BEATS the trivial predictors"
        else:
            verdict = "single channel: not judged (brainfm-bench judges multichannel data)"
        lines.append(
            f"  held-out subject of {name}: masked-patch MSE {row['model_vs_zero']:.3f} x the "
            f"zeros predictor; best trivial predictor ({row['best_trivial']}) "
            f"{row['model_vs_zero'] / ratio:.3f}; ratio {ratio:.3f}: {verdict}")
    return not failing, lines


def subject_scores(table) -> "pandas.DataFrame":
    """Balanced accuracy per (pipeline, left-out subject), averaged over seeds, from the
    benchmark's tidy results (brainfm.bench.report.per_subject: the unit its statistics
    count)."""
    from .bench.report import per_subject

    scores = per_subject(table)
    return scores[scores["metric"] == "balanced_accuracy"]


def plot_demo(result: dict, scores, out: Path) -> Path:
    """Two panels: held-out reconstruction against the trivial predictors, and each
    pipeline's balanced accuracy per left-out subject (``scores``: :func:`subject_scores`)."""
    from matplotlib.figure import Figure   # no pyplot: no display or backend needed

    fig = Figure(figsize=(11, 4))
    ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 2]})
    heldout = result.get("heldout") or {}
    for name, row in heldout.items():
        bars = {"model": row["model_vs_zero"], "spatial mean": row.get("spatial_vs_zero"),
                "previous patch": row.get("temporal_vs_zero"), "zeros": 1.0}
        bars = {k: v for k, v in bars.items() if v is not None}
        ax1.bar(list(bars), list(bars.values()),
                color=["tab:blue"] + ["tab:gray"] * (len(bars) - 1))
        ax1.set_title(f"pretraining: held-out subject of {name}", fontsize=10)
    ax1.set_ylabel("masked-patch MSE / zeros' (lower: better)")
    ax1.tick_params(axis="x", rotation=30)
    order = scores.groupby("pipeline")["value"].mean().sort_values().index.tolist()
    for i, pipe in enumerate(order):
        vals = scores[scores["pipeline"] == pipe]["value"].to_numpy()
        ax2.scatter(vals, [i] * len(vals), color="tab:gray", s=18, zorder=2)
        ax2.plot([vals.mean()], [i], "D", color="tab:blue", zorder=3)
    ax2.axvline(0.5, color="k", lw=0.8, ls=":", label="chance")
    ax2.set_yticks(range(len(order)), order)
    ax2.set_xlabel("balanced accuracy per left-out subject (diamond: mean)")
    ax2.set_title("rest vs mental arithmetic, leave one subject out", fontsize=10)
    ax2.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    return out


def results_table(scores) -> str:
    """Mean +- sd balanced accuracy over left-out subjects, per pipeline, best first
    (``scores``: :func:`subject_scores`)."""
    summary = scores.groupby("pipeline")["value"].agg(["mean", "std", "count"])
    summary = summary.sort_values("mean", ascending=False)
    width = max(len(p) for p in summary.index)
    lines = [f"  {'pipeline':{width}s}  balanced accuracy (mean +- sd over subjects)"]
    for pipe, row in summary.iterrows():
        lines.append(f"  {pipe:{width}s}  {row['mean']:.3f} +- {row['std']:.3f}  "
                     f"({int(row['count'])} subjects)")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="brainfm-demo", formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__,
        epilog="Everything goes under --out (default runs/demo) and --store-root (default "
               "stores/demo); a re-run starts the stages again (stores are reused).")
    parser.add_argument("--out", default="runs/demo",
                        help="folder for the runs, the checkpoint, embeddings, results and "
                             "the plot (default: runs/demo)")
    parser.add_argument("--store-root", default="stores/demo",
                        help="where the corpus stores go (default: stores/demo)")
    parser.add_argument("--pretrain-steps", type=int, default=None,
                        help="pretraining steps (default: experiment=pretrain_demo's 300, "
                             "checked on the held-out subject every 100); with this option "
                             "the check runs once, at the end")
    args = parser.parse_args(argv)
    os.environ.setdefault("MALLOC_ARENA_MAX", "2")
    out = Path(args.out).resolve()
    stores = Path(args.store_root).resolve()
    t0 = time.perf_counter()
    seconds = {}
    try:
        seconds["prep"] = _stage(1, "Prepare the embedded real sample into a corpus store", [
            "brainfm-prep", "dataset=eegmat_sample", f"store_root={stores}",
            f"hydra.run.dir={out}/prep", "progress=false"])
        pretrain = out / "pretrain"
        seconds["pretrain"] = _stage(2, "Pretrain a tiny model (masked patches; one subject "
                                     "held out)", [
            "brainfm-pretrain", "experiment=pretrain_demo", f"store_root={stores}",
            f"hydra.run.dir={pretrain}", "overwrite=true",  # a re-run starts the stage again
            *([f"trainer.max_steps={args.pretrain_steps}",   # one held-out check, at the end
               f"trainer.val_check_interval={args.pretrain_steps}"]
              if args.pretrain_steps else [])])
        result = json.loads((pretrain / "result.json").read_text())
        beats, verdict = _heldout_verdict(result)
        print("\n".join(verdict))
        checkpoint = out / "checkpoint"
        seconds["export"] = _stage(3, "Save the run as a checkpoint folder", [
            "brainfm-export", str(pretrain), str(checkpoint)])
        embeddings = out / "embeddings"
        seconds["embed"] = _stage(4, "Embed the dataset with the checkpoint", [
            "brainfm-embed", f"checkpoint={checkpoint}", "input=eegmat_sample",
            f"store_root={stores}", f"out={embeddings}", "progress=false"])
        bench = out / "bench"
        seconds["bench"] = _stage(5, "Leave-one-subject-out: probe and fine-tune the "
                                  "checkpoint against a classical baseline", [
            "brainfm-bench", "experiment=bench_demo", f"checkpoint={checkpoint}",
            f"store_root={stores}", f"results_dir={out}/bench_cells",
            f"hydra.run.dir={bench}", "progress=false"])
    except DemoError as err:
        print(f"\nbrainfm-demo: {err}", file=sys.stderr)
        return 1
    import pandas as pd

    scores = subject_scores(pd.read_csv(bench / "results.csv"))
    print("\n[results] rest vs mental arithmetic on the 4 sample subjects (leave one subject "
          "out; the checkpoint saw these subjects' unlabelled signal, so this is a "
          "transductive demo, not a transfer result: docs/benchmarks.md has those)")
    print(results_table(scores))
    plot = plot_demo(result, scores, out / "demo.png")
    print("\n".join(verdict))
    print(f"\nbrainfm-demo finished in {time.perf_counter() - t0:.0f} s ("
          + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items()) + ")")
    print(f"  corpus stores      {stores}\n"
          f"  pretraining run    {pretrain} (result.json, metrics, brainfm-pretrain.log)\n"
          f"  checkpoint folder  {checkpoint}  (brainfm.from_pretrained('{checkpoint}'))\n"
          f"  embeddings         {embeddings}\n"
          f"  benchmark          {bench} (results.csv, summary.md, plots)\n"
          f"  demo plot          {plot}")
    if not beats:
        print("NOTE: the pretrained model did not beat the trivial predictors on the held-out "
              "subject; its probe and fine-tuning figures measure an unlearned network.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Hydra entry points. Each turns a composed config into typed arguments and calls the API."""
from __future__ import annotations

import logging
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from .errors import BrainfmError
from .configuration import conf_dir as _conf_dir, register_resolvers
from .logging_setup import quiet_libraries
from .paths import data_root


def run_prep(cfg) -> int:
    """brainfm-prep body: returns a process exit code (1 when every recording failed)."""
    from .configuration import prep_configs
    from .data.prep import prepare

    try:
        spec, std = prep_configs(cfg)
        summary = prepare(spec, std, data_root(cfg.data_root), Path(cfg.store_dir),
                          dtype=cfg.dtype, overwrite=bool(cfg.overwrite), n_jobs=int(cfg.n_jobs),
                          limit=cfg.limit, progress=bool(cfg.progress))
    except (BrainfmError, ValueError) as err:
        print(f"brainfm-prep: {err}\n  log: {_log_file('brainfm-prep')}", file=sys.stderr)
        return 2
    print(summary.as_text())
    print(f"  log: {_log_file('brainfm-prep')}")
    return 1 if summary.failed and not summary.windows else 0


def _log_file(command: str) -> str:
    """The full log of this Hydra run (the console shows warnings only)."""
    from hydra.core.hydra_config import HydraConfig

    try:
        return str(Path(HydraConfig.get().runtime.output_dir) / f"{command}.log")
    except ValueError:   # called outside an entry point (tests composing configs)
        return "(no Hydra run folder)"


@contextmanager
def reported_failures(command: str, debug: bool = False):
    """An entry point's failure reaches the user as its message and the log's path, never as
    a traceback: the traceback goes to the log file (and, with ``debug=true``, to the
    console as well, the error raised as it is)."""
    try:
        yield
    except Exception as err:
        if debug:
            raise
        record = logging.getLogger(command).makeRecord(
            command, logging.ERROR, __file__, 0, "stopped by this error:", None,
            sys.exc_info())
        for handler in logging.getLogger().handlers:   # the log file only, not the console
            if isinstance(handler, logging.FileHandler):
                handler.handle(record)
        ours = isinstance(err, BrainfmError)   # its message says what to do
        text = str(err) if ours else f"{type(err).__name__}: {err}"
        if not text.startswith(f"{command}:"):
            text = f"{command}: {text}"
        sys.exit(f"{text}\n  log: {_log_file(command)}"
                 + ("" if ours else " (the traceback is there; debug=true shows it here)"))


def _diffusion_heldout(heldout: dict) -> list[str]:
    """A denoiser beats predicting zeros within steps (its output layer starts at zero), so
    no verdict here: the checks that matter are benchmarks/diffusion_checks.py's."""
    lines = ["  held-out v-MSE relative to predicting zeros, raw / EMA weights (the checks "
             "against a Wiener denoiser and of generated spectra: "
             "benchmarks/diffusion_checks.py <run>):"]
    lines += [f"    {name}: {row['model_vs_zero']:.3f} / {row['ema_vs_zero']:.3f}"
              for name, row in heldout.items()]
    return lines


def _masked_patch_heldout(heldout: dict, failing: dict | None) -> list[str]:
    lines = []
    if any("model_vs_best_trivial" in row for row in heldout.values()):
        lines.append("  held-out masked-patch MSE relative to the best trivial predictor "
                     "(below 1 beats it):")
    for name, row in heldout.items():
        if "model_vs_best_trivial" in row:
            ratio = row["model_vs_best_trivial"]
            verdict = ("does NOT beat it" if name in (failing or {}) else "beats it"
                       if row.get("multichannel") else "single channel: not judged")
            lines.append(f"    {name}: {ratio:.3f} vs {row.get('best_trivial')}: {verdict}")
        if "band_power_vs_channel_mean" in row:
            lines.append(f"    {name}: hidden patches' log band power, error relative to each "
                         f"channel's visible mean: {row['band_power_vs_channel_mean']:.3f}")
    if failing is None:
        lines.append("  no held-out figures: whether the model beats the trivial predictors "
                     "was not checked")
    elif failing:
        lines.append(f"  NOT a working pretrained model: it does not beat the best trivial "
                     f"predictor on {', '.join(sorted(failing))} (docs/pretraining.md)")
    elif any(row.get("multichannel") for row in heldout.values()):
        lines.append("  beats the best trivial predictor on every multichannel held-out "
                     "dataset")
    else:
        lines.append("  no multichannel held-out dataset: nothing to judge it on")
    return lines


def pretrain_summary(result: dict, seconds: float) -> str:
    """What brainfm-pretrain did, whether it beat the trivial predictors, and where its
    outputs are. The verdict is brainfm-bench's (:func:`brainfm.bench.pretrained.
    pretraining_gate`): multichannel held-out datasets are judged, single-channel ones shown
    only (with one channel the spatial predictor has nothing to average)."""
    from .bench.pretrained import pretraining_gate

    lines = [f"brainfm-pretrain finished: {result.get('global_step')} steps in {seconds:.0f} s"]
    heldout = result.get("heldout") or {}
    if result.get("objective") == "diffusion":  # the run says what it trained
        lines += _diffusion_heldout(heldout)
    else:
        lines += _masked_patch_heldout(heldout, pretraining_gate({"training": result}))
    rep = result.get("representation") or {}
    if rep:
        lines.append(f"  held-out pooled features: effective rank {rep['effective_rank']:.1f} "
                     f"of {rep['dims']}, mean std {rep['std_mean']:.3g}"
                     + (" -- COLLAPSED" if rep.get("collapsed") else ""))
    out = result.get("output_dir")
    if result.get("checkpoint_dir"):
        lines.append(f"  checkpoint folder: {result['checkpoint_dir']}  "
                     "(brainfm.from_pretrained(folder), brainfm-embed checkpoint=folder)")
    if out:
        lines.append(f"  run folder: {out} (result.json, metrics, checkpoints/last.ckpt)")
    lines.append(f"  log: {_log_file('brainfm-pretrain')}")
    return "\n".join(lines)


def prep_main() -> None:
    import hydra

    register_resolvers()

    @hydra.main(config_path=_conf_dir(), config_name="prep", version_base="1.3")
    def _main(cfg) -> None:
        quiet_libraries(lightning=False)   # prep never trains
        with reported_failures("brainfm-prep", bool(cfg.get("debug"))):
            code = run_prep(cfg)
        if code:
            sys.exit(code)

    _main()


def pretrain_main() -> None:
    import hydra

    register_resolvers()

    @hydra.main(config_path=_conf_dir(), config_name="pretrain", version_base="1.3")
    def _main(cfg) -> None:
        quiet_libraries()
        from .pretrain_run import rank, run_pretrain
        from .validate import pretrain_problems, raise_problems

        t0 = time.perf_counter()
        with reported_failures("brainfm-pretrain", bool(cfg.get("debug"))):
            raise_problems("brainfm-pretrain", pretrain_problems(cfg))
            result = run_pretrain(cfg)
        if rank() == 0:
            print(pretrain_summary(result, time.perf_counter() - t0))

    _main()


def run_bench(cfg) -> None:
    """brainfm-bench body: the whole configuration checked, then stores, pretrained
    checkpoints and cells, and the summary."""
    from omegaconf import OmegaConf

    from .bench.sweep import ensure_pretrained
    from .bench.runner import run_benchmark
    from .configuration import drop_null_entries
    from .pretrain_run import ensure_stores
    from .validate import bench_problems, raise_problems

    experiment = drop_null_entries(OmegaConf.to_container(cfg, resolve=True))
    raise_problems("brainfm-bench", bench_problems(experiment, cfg.store_root))
    pretrained = experiment.get("pretrained")
    corpus = list(pretrained["datasets"]) if pretrained else []
    ensure_stores(list(dict.fromkeys([*cfg.datasets, *corpus])), Path(cfg.store_root),
                  cfg.data_root, inline=experiment.get("dataset_configs"))
    if pretrained:
        ensure_pretrained(pretrained, cfg.datasets, cfg.store_root, cfg.data_root,
                          executor=experiment.get("executor"),
                          folder=Path(cfg.report_dir) / "jobs")
    result = run_benchmark(experiment, cfg.store_root, cfg.results_dir,
                           progress=bool(cfg.progress), report_dir=cfg.report_dir)
    print(result["summary"])
    aside = result.get("set_aside") or []
    print(f"brainfm-bench: {result['computed']} cells computed, {result['skipped']} "
          f"already done, {result['seconds']:.0f} s; tables and plots in "
          f"{result['report_dir']}, cells in {cfg.results_dir}; log: "
          f"{_log_file('brainfm-bench')}")
    if aside:
        print(f"brainfm-bench: {len(aside)} invalid results cell(s) set aside and computed "
              "again: " + "; ".join(f"{cell} -> {dest}" for cell, dest in aside))


def bench_main() -> None:
    import hydra

    register_resolvers()

    @hydra.main(config_path=_conf_dir(), config_name="bench", version_base="1.3")
    def _main(cfg) -> None:
        quiet_libraries()
        with reported_failures("brainfm-bench", bool(cfg.get("debug"))):
            run_bench(cfg)

    _main()

"""Hydra entry points. Each turns a composed config into typed arguments and calls the API."""
from __future__ import annotations

import sys
from pathlib import Path

from .errors import BrainfmError
from .configuration import conf_dir as _conf_dir, register_resolvers
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
        print(f"brainfm-prep: {err}", file=sys.stderr)
        return 2
    print(summary.as_text())
    return 1 if summary.failed and not summary.windows else 0


def prep_main() -> None:
    import hydra

    register_resolvers()
    @hydra.main(config_path=_conf_dir(), config_name="prep", version_base="1.3")
    def _main(cfg) -> None:
        code = run_prep(cfg)
        if code:
            sys.exit(code)

    _main()


def pretrain_main() -> None:
    import hydra

    register_resolvers()

    @hydra.main(config_path=_conf_dir(), config_name="pretrain", version_base="1.3")
    def _main(cfg) -> None:
        from .pretrain_run import rank, run_pretrain
        from .validate import pretrain_problems, raise_problems

        try:
            raise_problems("brainfm-pretrain", pretrain_problems(cfg))
            result = run_pretrain(cfg)
        except BrainfmError as err:
            sys.exit(f"brainfm-pretrain: {err}")
        if rank() == 0:
            print("brainfm-pretrain finished: " + ", ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                for k, v in result.items()))

    _main()


def bench_main() -> None:
    import hydra

    register_resolvers()

    @hydra.main(config_path=_conf_dir(), config_name="bench", version_base="1.3")
    def _main(cfg) -> None:
        from omegaconf import OmegaConf

        from .bench.pretrained import ensure_pretrained
        from .bench.runner import run_benchmark
        from .pretrain_run import ensure_stores
        from .validate import bench_problems, raise_problems

        experiment = OmegaConf.to_container(cfg, resolve=True)
        try:
            raise_problems("brainfm-bench", bench_problems(experiment, cfg.store_root))
        except BrainfmError as err:
            sys.exit(str(err))
        pretrained = experiment.get("pretrained")
        corpus = list(pretrained["datasets"]) if pretrained else []
        ensure_stores(list(dict.fromkeys([*cfg.datasets, *corpus])), Path(cfg.store_root),
                      cfg.data_root, inline=experiment.get("dataset_configs"))
        if pretrained:
            ensure_pretrained(pretrained, cfg.datasets, cfg.store_root, cfg.data_root)
        result = run_benchmark(experiment, cfg.store_root, cfg.results_dir,
                               progress=bool(cfg.progress), report_dir=cfg.report_dir)
        print(result["summary"])
        print(f"brainfm-bench: {result['computed']} cells computed, {result['skipped']} "
              f"already done, {result['seconds']:.0f} s; tables and plots in "
              f"{result['report_dir']}, cells in {cfg.results_dir}")

    _main()

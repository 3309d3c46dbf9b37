"""Are a pretrained diffusion backbone's latents better features than random ones, or than band
power? A linear probe on held-out subjects (issue 11, section 4).

Two steps, so that the expensive one can run where a GPU is:

    # 1. features: pooled latents of the trained (EMA and raw) and of a randomly initialised
    #    backbone of the same size, plus log band power, for every window of a store
    python benchmarks/diffusion_probe.py extract --run runs/<diffusion run> \
        --store stores/ssvep_exoskeleton --features latents --out lat_ssvep.npz --device cuda
    python benchmarks/diffusion_probe.py extract --store stores/ssvep_exoskeleton \
        --features band_power --out bp_ssvep.npz
    # 2. leave-one-subject-out linear probe and the benchmark suite's statistics
    python benchmarks/diffusion_probe.py score lat_ssvep.npz bp_ssvep.npz --out-dir DIR

Features are exactly what brainfm-bench's linear probe reads for this backbone family: the
adapter's latents (gate spread per block and 1 s patch, clean input at t = 1), averaged over a
window's real channels and patches, so (windows, blocks x width). ``--piece N`` cuts each
window into consecutive N-sample pieces first (a continuous view's 10 s windows into the 5 s
windows of the task view); labels of a continuous view come from the dataset's own label rule
(``conf/dataset/<name>.yaml``: its path pattern and label map). ``--subjects`` keeps some
subjects (e.g. those a pretraining run excluded). Band power: log10 power per channel in
delta-gamma (the benchmark's ``bandpower_lr`` features), channels in store order.

The probe is the suite's (scaler + balanced logistic regression fitted on the training
subjects of each fold); scores per held-out subject (balanced accuracy, AUROC for two
classes); every pair of feature sets compared with the suite's paired Wilcoxon test, Holm and
BH corrected, bootstrap CI, rank-biserial r and d_z (``brainfm.bench.report``).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

if __package__ in (None, ""):  # run as a script: import this folder as the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BAND_SECONDS = 2.0


def _task_labels(windows, dataset: str) -> np.ndarray:
    """Class index per window from the dataset's own label rule (for a continuous view, whose
    store holds no labels)."""
    from brainfm.configuration import compose_config, prep_configs
    from brainfm.data.datasets import _ids_from_path

    spec, _ = prep_configs(compose_config([f"dataset={dataset}"]))  # as brainfm-prep reads it
    classes = list(spec.labels.classes)
    if not classes or spec.labels.source != "path":
        raise SystemExit(f"{dataset}: labels do not come from file paths "
                         f"(labels.source={spec.labels.source}); probe its task-view store")
    out = []
    for rec in windows.table["recording"]:
        raw = _ids_from_path(spec, str(rec)).get("label")
        name = spec.labels.map.get(raw, raw)
        if name not in classes:
            raise SystemExit(f"{dataset}: recording {rec} has label {raw!r}, not one of "
                             f"{classes}")
        out.append(classes.index(name))
    return np.asarray(out, dtype=np.int64)


def _networks(run: Path, seed: int) -> dict[str, torch.nn.Module]:
    """Trained raw and EMA weights of the run's last checkpoint, and the same architecture
    randomly initialised (seed ``seed``)."""
    from omegaconf import OmegaConf

    from brainfm.models.diffusion_denoiser import DiffusionDenoiser
    from benchmarks.diffusion_checks import nets_from_checkpoint

    cfg = OmegaConf.to_container(OmegaConf.load(run / ".hydra" / "config.yaml").model,
                                 resolve=True)
    nets = nets_from_checkpoint(run / "checkpoints" / "last.ckpt", cfg)
    torch.manual_seed(seed)
    nets = {f"trained_{k}": v for k, v in nets.items()}
    nets["random_init"] = DiffusionDenoiser(**{k: v for k, v in cfg.items()
                                               if k != "family"}).eval()
    return nets


@torch.no_grad()
def extract(args) -> None:
    from brainfm.data.loading import WindowDataset
    from brainfm.bench.adapters import get_adapter
    from brainfm.models.heads import masked_mean

    windows = WindowDataset([args.store])
    table = windows.table
    if args.subjects:
        keep = np.flatnonzero(table["subject"].isin(args.subjects.split(",")).to_numpy())
        windows = windows.subset(keep)
        table = windows.table
    labels = table["label"].to_numpy(dtype=np.int64)
    if (labels < 0).all():
        labels = _task_labels(windows, str(table["dataset"].iloc[0]))
    sfreq = float(windows.stores[0].meta["sfreq"])
    wanted = set(args.features.split(","))
    nets = ({k: v.to(args.device) for k, v in _networks(args.run, args.seed).items()}
            if "latents" in wanted else {})
    bands = None
    if "band_power" in wanted:  # imported only here: the classical baselines need MNE
        from brainfm.bench.baselines.classical import BandPower

        bands = BandPower(sfreq=sfreq, seg_s=BAND_SECONDS)
    adapter = get_adapter("diffusion")
    n_samples = int(table["n_samples"].iloc[0])
    piece = args.piece or n_samples
    if n_samples % piece or piece % windows.patch_len:
        raise SystemExit(f"--piece {piece}: windows have {n_samples} samples; use a divisor "
                         f"that is a multiple of {windows.patch_len}")
    n_pieces = n_samples // piece
    feats: dict[str, list] = {k: [] for k in [*nets, *(["band_power"] if bands else [])]}
    meta = []
    for start in range(0, len(windows), args.batch):
        idx = np.arange(start, min(start + args.batch, len(windows)))
        batch = windows.load_batch(idx)
        x = batch["x"].reshape(*batch["x"].shape[:2], -1)
        mask = batch["channel_mask"]
        for k in range(n_pieces):
            xp = x[..., k * piece:(k + 1) * piece]
            xp = xp.reshape(*xp.shape[:2], -1, windows.patch_len)
            for name, net in nets.items():
                lat = adapter.features(net, xp.to(args.device), batch["sensors"].to(args.device),
                                       mask.to(args.device))
                feats[name].append(masked_mean(lat, mask.to(args.device)).float().cpu()
                                   .numpy().astype(np.float16))
            if bands is not None:
                feats["band_power"].append(bands.transform(
                    xp.reshape(*xp.shape[:2], -1).numpy()).astype(np.float32))
            for r in batch["row"].tolist():
                row = table.iloc[r]
                meta.append((str(row["subject"]), str(row["recording"]),
                             float(row["onset_s"]) + k * piece / sfreq, int(labels[r])))
        print(f"{min(start + args.batch, len(windows))}/{len(windows)} windows", flush=True)
    subject, recording, onset, label = (np.asarray(v) for v in zip(*meta))
    np.savez(args.out, subject=subject, recording=recording, onset_s=onset, label=label,
             dataset=str(table["dataset"].iloc[0]), run=str(args.run or ""),
             **{f"features_{k}": np.concatenate(v) for k, v in feats.items()})
    print(f"wrote {args.out}: {len(label)} windows, feature sets {list(feats)}")


META = ("subject", "recording", "onset_s", "label")


def load_features(paths) -> dict[str, dict]:
    """Per dataset: the windows' metadata and every feature set of its files (files of one
    dataset must describe the same windows in the same order)."""
    out: dict[str, dict] = {}
    for path in paths:
        data = np.load(path)
        entry = out.setdefault(str(data["dataset"]), {k: data[k] for k in META} | {"sets": {}})
        for k in META:
            if not np.array_equal(entry[k], data[k]):
                raise SystemExit(f"{path}: its windows ({k}) differ from another file of "
                                 f"dataset {data['dataset']}; extract both with the same "
                                 "--store, --subjects and --piece")
        entry["sets"] |= {k[len("features_"):]: data[k] for k in data.files
                          if k.startswith("features_")}
    return out


def probe_table(dataset: str, entry: dict, seeds: int = 1) -> pd.DataFrame:
    """Leave-one-subject-out scores of every feature set of one dataset, as the benchmark
    suite's tidy rows; the folds are the suite's own (bench/protocols.py), leakage-checked."""
    from brainfm.bench.metrics import classification_metrics
    from brainfm.bench.probe import linear_probe
    from brainfm.bench.protocols import LeaveOneSubjectOut

    y, subjects = entry["label"], entry["subject"]
    n_classes = int(y.max()) + 1
    windows = pd.DataFrame({"dataset": dataset, "subject": subjects, "session": None,
                            "recording": entry["recording"], "label": y,
                            "onset_s": entry["onset_s"]})
    folds = list(LeaveOneSubjectOut(val_subjects=0).split(windows))
    rows = []
    for pipeline, X in entry["sets"].items():
        X = X.astype(np.float64)
        for fold in folds:
            train, test, held = fold.train, fold.test, subjects[fold.test[0]]
            if len(np.unique(y[train])) < n_classes:
                continue
            for seed in range(seeds):
                model = linear_probe(seed).fit(X[train], y[train])
                scores = classification_metrics(y[test], model.predict(X[test]),
                                                model.predict_proba(X[test]), n_classes)
                rows += [{"dataset": dataset, "pipeline": pipeline, "protocol": "loso_probe",
                          "subject": str(held), "fold": str(held), "seed": seed,
                          "metric": m, "value": v} for m, v in scores.items()]
    return pd.DataFrame(rows)


def _markdown(frame: pd.DataFrame, spec: str) -> str:
    cell = lambda v: format(v, spec) if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(frame.columns) + " |", "|---" * len(frame.columns) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |"
              for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def score(args) -> None:
    from brainfm.bench.report import pairwise_tests, summary

    table = pd.concat([probe_table(d, e, args.seeds)
                       for d, e in load_features(args.features).items()], ignore_index=True)
    lines = []
    for (dataset, protocol), frame in summary(table).items():
        cols = [c for c in ("balanced_accuracy_mean", "balanced_accuracy_sd", "auroc_mean",
                            "auroc_sd") if c in frame]
        lines += [f"### {dataset} ({protocol}, {int(frame['n'].iloc[0])} held-out subjects)",
                  "", _markdown(frame[["pipeline", *cols]], ".3f"), ""]
        tests = pairwise_tests(table, dataset, protocol)
        lines += ["Paired tests on balanced accuracy (Wilcoxon; Holm and BH over this "
                  "dataset's pairs):", "",
                  _markdown(tests.drop(columns=["note"]), ".3g"), ""]
    text = "\n".join(lines)
    print(text)
    if args.out_dir:
        args.out_dir.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.out_dir / "probe_scores.csv", index=False)
        (args.out_dir / "summary.md").write_text(text + "\n")
        (args.out_dir / "inputs.json").write_text(json.dumps(
            {"features": [str(p) for p in args.features], "seeds": args.seeds}, indent=1))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("extract", help="pooled latents (trained, random) and band power")
    ex.add_argument("--run", type=Path, default=None, help="a task=diffusion run folder")
    ex.add_argument("--features", default="latents,band_power",
                    help="latents (needs --run) and/or band_power (needs MNE installed)")
    ex.add_argument("--store", type=Path, required=True)
    ex.add_argument("--out", type=Path, required=True)
    ex.add_argument("--subjects", default="", help="comma-separated subject ids to keep")
    ex.add_argument("--piece", type=int, default=0, help="samples per piece (0: whole window)")
    ex.add_argument("--batch", type=int, default=16)
    ex.add_argument("--seed", type=int, default=0, help="seed of the random initialisation")
    ex.add_argument("--device", default="cpu")
    sc = sub.add_parser("score", help="LOSO linear probe and statistics")
    sc.add_argument("features", type=Path, nargs="+")
    sc.add_argument("--seeds", type=int, default=1)
    sc.add_argument("--out-dir", type=Path, default=None)
    args = ap.parse_args(argv)
    extract(args) if args.command == "extract" else score(args)


if __name__ == "__main__":
    main()

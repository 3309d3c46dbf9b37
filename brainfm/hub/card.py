"""The model card (README.md) of a checkpoint folder, written from its config.json alone.

Front matter in the hub's model-card metadata format (library, tags, datasets), then what
the model is, the data contract, the corpus, the objective, the held-out figures beside the
trivial predictors, how to load it, and the licences of the corpus datasets (each dataset's
config declares its own: ``licence:`` and ``citation:``).
"""
from __future__ import annotations

from ..configuration import declared_dataset
from ..models.registry import DEFAULT_FAMILY, FAMILIES

_ENCODING_TEXT = {
    "sensor": "by sensor features (position, orientation, type): any montage goes in",
    "channel_order": "by their place in a fixed channel order (ACPE convolution or a "
                     "flatten head): recordings are brought to the channel set below, by name",
    "channel_index": "by a table of channel indices (the reference EEGDM layout): the "
                     "channel order must match the one used in training",
}


def _family_text(name: str) -> str:
    """The family record's one-line description (its name when it is not registered here)."""
    return FAMILIES[name].description if name in FAMILIES else name


def _fmt(value, digits: int = 4) -> str:
    if value is None:
        return "unknown"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _heldout_table(heldout: dict | None) -> list[str]:
    if not heldout:
        return ["No held-out figures: the weights were imported or exported without a "
                "training summary. Check them on your data before relying on them."]
    lines = ["Masked-patch or denoising error on held-out subjects, divided by the error of "
             "predicting zeros (lower is better; below the best trivial predictor means the "
             "model learned something its neighbours do not already give):", "",
             "| dataset | model / zeros | spatial / zeros | temporal / zeros | "
             "model / best trivial |", "|---|---|---|---|---|"]
    for name, row in sorted(heldout.items()):
        lines.append(f"| {name} | {_fmt(row.get('model_vs_zero'))} | "
                     f"{_fmt(row.get('spatial_vs_zero'))} | {_fmt(row.get('temporal_vs_zero'))}"
                     f" | {_fmt(row.get('model_vs_best_trivial'))} |")
    worse = [n for n, r in heldout.items() if r.get("multichannel")
             and (r.get("model_vs_best_trivial") or 0) >= 1]
    if worse:
        lines += ["", f"**Warning**: on {', '.join(sorted(worse))} the model does not beat the "
                  "best trivial predictor: it is not a working pretrained model there."]
    return lines


def _pretext_text(pretext: dict | None) -> str:
    if not pretext:
        return "not recorded"
    aux = (f" + band power x {pretext['band_power_weight']:g}"
           if pretext.get("band_power_weight") else "")
    return (f"{pretext.get('target')}{aux} on hidden patches; {pretext.get('mask_kind')} masks, "
            f"ratio {_fmt(pretext.get('mask_ratio'))}")


def _readout_text(readout: dict | None) -> str:
    if not readout or readout.get("layer") is None:
        return "the last layer, mean over real channels and patches"
    return f"layer {readout['layer']} (0 = first), mean over real channels and patches"


def _licence_text(name: str) -> str:
    """The licence (and citation) that dataset ``name``'s config declares."""
    spec = declared_dataset(name)
    if spec is None:
        return "no dataset config of this name was found; see the dataset source for its terms"
    if not spec.licence:
        return (f"its config declares no licence (add `licence:` to conf/dataset/{name}.yaml);"
                " see the dataset source for its terms")
    return spec.licence + (f"; cite {spec.citation}" if spec.citation else "")


def model_card(config: dict) -> str:
    family = config.get("family") or DEFAULT_FAMILY
    contract = config.get("contract") or {}
    corpus = config.get("corpus") or {}
    arch = config.get("architecture") or {}
    datasets = corpus.get("datasets") or []
    weights = config.get("weights") or {}
    front = ["---", "library_name: brainfm", "tags:", "- eeg", "- neuroscience",
             "- foundation-model", f"- {family.replace('_', '-')}"]
    if datasets:
        front += ["datasets:"] + [f"- {d}" for d in datasets]
    front += ["---", ""]
    encoding = contract.get("channel_encoding", "sensor")
    std = contract.get("standardise") or {}
    filt = contract.get("filters") or {}
    notch = contract.get("notch") or {}
    units = ", ".join(f"{k}: {v}" for k, v in (contract.get("units") or {}).items())
    channels = contract.get("channels")
    size = arch.get("d_model"), arch.get("n_layers")
    seen = ", ".join(contract.get("sensor_types") or [])
    rejection = contract.get("rejection") or {}
    thresholds = ", ".join(f"{d}: {_fmt(v)}" for d, v in (rejection.get("max_abs") or {}).items())
    body = [
        f"# brainfm {family.replace('_', '-')} checkpoint", "",
        f"This is {_family_text(family)}, {_fmt(weights.get('n_parameters'))} "
        f"parameters (width {size[0]}, {size[1]} layers), written by brainfm "
        f"{config.get('brainfm_version')}."
        + (f" Its weights were imported from the original {config['source_format']} code."
           if config.get("source_format") else ""), "",
        "## Data contract", "",
        "What a recording must look like for this model; `model.prepare(recording)` applies "
        "it to any recording brainfm or MNE reads." + ("" if contract.get("known", True) else
        " **The contract of these weights is not recorded: brainfm's default is assumed.**"),
        "",
        f"- sampling rate: {_fmt(contract.get('sfreq'))} Hz; patches of "
        f"{_fmt(contract.get('patch_len'))} samples; training windows of "
        f"{_fmt(contract.get('window_s'))} s",
        f"- units per channel type: {units or 'unknown'}",
        f"- filters: {filt.get('l_freq')}-{filt.get('h_freq')} Hz band-pass, "
        f"{filt.get('design', '')} order {filt.get('order')}; notch {notch.get('freq')} Hz "
        f"(q {notch.get('q')})",
        f"- reference: {contract.get('reference')}; channel types kept: "
        f"{', '.join(std.get('pick_types') or []) or 'unknown'}",
        f"- sensor types seen in training: {seen or 'unknown'}",
        f"- rejection: {rejection.get('rule', 'none')} ({thresholds or 'no thresholds recorded'})",
        f"- channels are known {_ENCODING_TEXT.get(encoding, encoding)}",
    ]
    if channels:
        body.append(f"- channel set ({len(channels)}, in order): {', '.join(channels)}")
    body += ["", "## Pretraining", "",
             f"- corpus: {', '.join(datasets) or 'unknown'}; {_fmt(corpus.get('hours'), 3)} "
             f"hours; {_fmt(corpus.get('n_recordings'))} recordings (sha256 of their ids: "
             f"`{corpus.get('recording_ids_sha256') or 'n/a'}`)",
             f"- objective: {config.get('objective') or 'unknown'}; "
             f"{_fmt(config.get('steps'))} optimiser steps",
             f"- pretext: {_pretext_text(config.get('pretext'))}",
             f"- read-out (what `embed` and the linear probe read): "
             f"{_readout_text(config.get('readout'))}", "",
             "### Held-out figures", ""]
    body += _heldout_table(config.get("heldout"))
    body += ["", "## Use", "", "```python", "import brainfm", "",
             'model = brainfm.from_pretrained("path/to/this/folder")',
             'rec = brainfm.read_recording("recording.edf")',
             "emb = model.embed(rec)          # prepare + windows -> embeddings",
             "emb.windows.shape, emb.recording.shape", "```", "",
             "From the command line: `brainfm-embed checkpoint=<this folder> input=<file, "
             "folder or dataset> out=<dir>`. Loading verifies the sha256 of "
             f"`model.safetensors` (`{weights.get('sha256', '')[:16]}...`) and never runs "
             "pickled code.", "",
             "## Licences of the corpus datasets", ""]
    if datasets:
        body += [f"- {d}: {_licence_text(d)}" for d in datasets]
        body += ["", "The weights are derived from these recordings; attribution-requiring "
                 "licences (ODC-By) ask you to credit the sources when you share them."]
    else:
        body.append("No corpus recorded.")
    return "\n".join(front + body) + "\n"


__all__ = ["model_card"]

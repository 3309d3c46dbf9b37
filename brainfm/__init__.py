"""brainfm: train and evaluate EEG/MEG/iEEG foundation models on any recording MNE reads."""
from ._version import __version__
from .data import Annotations, Recording, from_array, read_annotations, read_recording

__all__ = ["Annotations", "Recording", "from_array", "from_pretrained", "read_annotations",
           "read_recording", "save_pretrained", "__version__"]


def from_pretrained(path, **overrides):
    """A model of either family (criss-cross or diffusion) from a checkpoint folder, a
    brainfm model file or run checkpoint (``last.ckpt``), or an original CBraMod or EEGDM
    state dict (see :func:`brainfm.checkpoint.from_pretrained`); imported lazily to keep
    ``import brainfm`` light."""
    from .checkpoint import from_pretrained as _load

    return _load(path, **overrides)


def save_pretrained(model, folder, **metadata):
    """Write a checkpoint folder: model.safetensors, config.json (architecture, data
    contract, corpus, training figures, sha256) and a model card README.md (see
    :func:`brainfm.hub.folder.save_pretrained`)."""
    from .hub.folder import save_pretrained as _save

    return _save(model, folder, **metadata)

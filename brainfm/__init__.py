"""brainfm: train and evaluate EEG/MEG/iEEG foundation models on any recording MNE reads."""
from ._version import __version__
from .data import Annotations, Recording, from_array, read_annotations, read_recording

__all__ = ["Annotations", "Recording", "from_array", "from_pretrained", "read_annotations",
           "read_recording", "__version__"]


def from_pretrained(path, **overrides):
    """A model of either family (criss-cross or diffusion) from a brainfm model file or an
    original CBraMod or EEGDM checkpoint (see
    :func:`brainfm.checkpoint.from_pretrained`); imported lazily to keep ``import brainfm``
    light."""
    from .checkpoint import from_pretrained as _load

    return _load(path, **overrides)

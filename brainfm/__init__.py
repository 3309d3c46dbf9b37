"""brainfm: train and evaluate EEG/MEG/iEEG foundation models on any recording MNE reads."""
from ._version import __version__
from .data import Annotations, Recording, from_array, read_annotations, read_recording

__all__ = ["Annotations", "Recording", "from_array", "read_annotations", "read_recording",
           "__version__"]

"""The data layer: read, standardise, window, store and load recordings."""
from .readers import from_array, read_annotations, read_recording
from .recording import Annotations, Recording

__all__ = ["Annotations", "Recording", "from_array", "read_annotations", "read_recording"]

"""Lightning modules: pretraining (and, later, downstream) tasks."""
from .pretrain import MaskedPatchPretraining

__all__ = ["MaskedPatchPretraining"]

"""Checkpoints that travel: folders in the Hugging Face hub layout (model.safetensors,
config.json, a model card), export from runs, and CBraMod write-back. See
docs/checkpoints.md."""
from .folder import (CARD, CHECKPOINT_FORMAT, CONFIG, WEIGHTS, is_checkpoint_folder,
                     read_config, save_pretrained)

__all__ = ["CARD", "CHECKPOINT_FORMAT", "CONFIG", "WEIGHTS", "is_checkpoint_folder",
           "read_config", "save_pretrained"]

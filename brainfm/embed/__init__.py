"""Embeddings from a checkpoint: ``model.embed(recording)`` for one recording, and
:func:`embed_dataset` / the ``brainfm-embed`` command for files, folders and datasets."""
from .core import EmbeddingResult, embed_dataset, write_result

__all__ = ["EmbeddingResult", "embed_dataset", "write_result"]

"""Backbones and heads in plain torch (no Lightning): readable top to bottom."""
from .criss_cross import CrissCrossTransformer, count_parameters

__all__ = ["CrissCrossTransformer", "count_parameters"]

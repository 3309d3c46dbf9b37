"""The model families brainfm ships, one module each (see brainfm.models.family)."""

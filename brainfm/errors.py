"""Errors that say which file, channel or value is wrong and what to do about it."""
from __future__ import annotations


class BrainfmError(Exception):
    """Base class for every error brainfm raises on purpose."""


class RecordingError(BrainfmError, ValueError):
    """A recording cannot be read or standardised.

    The message always starts with the source (file path or array name) so that a batch job's
    failure list can be read on its own.
    """

    def __init__(self, source, problem: str, hint: str = ""):
        self.source = str(source)
        self.problem = problem
        self.hint = hint
        text = f"{self.source}: {problem}"
        if hint:
            text += f" -> {hint}"
        super().__init__(text)


class ConfigError(BrainfmError, ValueError):
    """A configuration value is invalid; the message names the key and the value."""


class CheckpointError(BrainfmError, ValueError):
    """A file is not a model brainfm can load; the message names it and says why."""


class ConfigProblems(ConfigError):
    """Every problem found in a configuration, one per line."""

    def __init__(self, entry: str, problems: list[str]):
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{entry}: {len(self.problems)} problem(s) in the configuration, "
                         f"nothing was run:\n{lines}")


def raise_problems(entry: str, problems: list[str]) -> None:
    """Stop ``entry`` with every problem found, when there is any."""
    if problems:
        raise ConfigProblems(entry, problems)

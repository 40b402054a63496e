"""Errors that the command line turns into one line on stderr and exit code 2."""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """A file (or option) the user gave cannot be used.

    The CLI prints ``sdfrecon: error: <path>: <problem>`` and exits with code 2, with no
    traceback unless ``--debug``. ``line`` is the 1-based line number for text files.
    """

    def __init__(self, path: str | Path | None, problem: str, line: int | None = None):
        self.path = None if path is None else str(path)
        self.problem = problem
        self.line = line
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.path or "input"
        if self.line is not None:
            where = f"{where}:{self.line}"
        return f"{where}: {self.problem}"


class TrainingError(RuntimeError):
    """Training cannot go on (a NaN or Inf loss, say); the last good checkpoint is kept."""

"""The errors a caller can catch: :class:`EelsbatchError` and its kinds; the command line alone turns them into one
line and an exit code."""

from __future__ import annotations

from pathlib import Path


class EelsbatchError(Exception):
    """A problem with user input, reported as one line naming the file and the problem (exit code 2).

    Parameters
    ----------
    path
        The file, store or address at fault (``None`` where no file is involved).
    problem
        What is wrong, in words a user can act on.
    """

    exit_code = 2

    def __init__(self, path: str | Path | None, problem: str) -> None:
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class InputError(EelsbatchError):
    """Bad input: a missing, unreadable or unsupported file, spectra the model cannot read, a wrong argument."""


class StoreError(EelsbatchError):
    """A store that is missing, incomplete, of another kind, or an output that may not be written or replaced."""


class ModelError(EelsbatchError):
    """A model folder that is missing, corrupt, altered or of another format."""


class ClusterError(EelsbatchError):
    """Workers that cannot be had: an unreachable scheduler, SLURM missing or refusing the request."""


class Interrupted(EelsbatchError):
    """The user stopped a run (Ctrl-C): what was written stays resumable; exit code 130, as for SIGINT."""

    exit_code = 130

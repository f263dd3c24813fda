"""Exceptions that mean "the user asked for something that cannot be done".

Every planner raises :class:`InvalidParameterError` (a ``ValueError``) before it writes
anything; the CLI turns it into a one-line click usage error with exit code 2.
"""

from __future__ import annotations

__all__ = [
    "InvalidParameterError",
    "LayerNotFoundError",
    "IncompleteOutputError",
    "IncompleteMeshError",
    "IncompleteSkeletonError",
    "UnsafeFragmentError",
]


class InvalidParameterError(ValueError):
    """A parameter is out of range, inconsistent, or names something that does not exist."""


class LayerNotFoundError(InvalidParameterError):
    """The layer path has no readable ``info`` file."""

    def __init__(self, path: str):
        super().__init__(f"no Precomputed layer at {path} (its info file is missing or unreadable)")
        self.path = path


class IncompleteOutputError(RuntimeError):
    """A merge found a label without all of its inputs, or wrote less than it should have.

    Not a user error: the task fails (exit 1), is retried or dead-lettered, and the message
    names the label and the missing file so the forge or merge can be rerun.
    """


class IncompleteMeshError(IncompleteOutputError):
    """:class:`IncompleteOutputError` of a mesh merge."""


class IncompleteSkeletonError(IncompleteOutputError):
    """:class:`IncompleteOutputError` of a skeleton merge."""


class UnsafeFragmentError(InvalidParameterError):
    """A stored fragment is a Python pickle: loading it could run any code it holds.

    Refused unless the caller opts in (``allow_pickle=True``, ``IGNEOUS_ALLOW_PICKLED_FRAGMENTS=1``).
    """

"""Exceptions a job handler raises to tell the worker what to do with its job."""

from __future__ import annotations


class PermanentJobError(Exception):
    """Retrying cannot help (bad input, missing file): the job fails at once, whatever attempts remain."""


class LeaseLost(Exception):
    """The worker no longer owns the job (its lease expired and it was requeued): stop without writing."""

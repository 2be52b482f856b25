"""Exceptions a job handler raises to tell the worker what to do with its job."""

from __future__ import annotations


class PermanentJobError(Exception):
    """Retrying cannot help (bad input, missing file): the job fails at once, whatever attempts remain."""


class BadInputError(PermanentJobError):
    """The user's input is wrong (a file that is not the expected CSV, missing columns, a file gone or
    changed since upload): the job fails at once, and counts as bad input rather than as a failure of
    the system (kamioi_jobs_bad_input_last_hour, not kamioi_jobs_failed_last_hour)."""


class LeaseLost(Exception):
    """The worker no longer owns the job (its lease expired and it was requeued): stop without writing."""

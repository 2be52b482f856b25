"""Kamioi backend: shared core used by the API, the worker and the `kamioi` CLI."""

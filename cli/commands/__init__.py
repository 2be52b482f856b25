"""Subcommands of the `kamioi` console script; each module exposes `register(subparsers)`."""

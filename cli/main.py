"""The `kamioi` console script: one entry point for every operator command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from types import ModuleType

from cli.commands import admin, demo, doctor, evaluate, export, generate, import_, jobs
from cli.commands import map as map_

PRODUCT_COMMANDS = (admin, generate, import_, export, jobs, map_, evaluate, demo, doctor)


def _local_stack_commands() -> tuple[ModuleType, ...]:
    """`up`, `stop`, `status`, `reset`, `paused` and `token` drive the local stack, which is installed from the
    repository beside the product, never with it: where it is absent (a deployed worker), they are not offered."""
    try:
        from cli.commands import stack, token
    except ModuleNotFoundError as err:
        if err.name is None or err.name.split(".")[0] != "local_stack":
            raise
        return ()
    return (stack, token)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kamioi", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module in (*_local_stack_commands(), *PRODUCT_COMMANDS):
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    sys.exit(args.func(args))

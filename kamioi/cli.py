"""The `kamioi` console script: one entry point for every operator command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from kamioi.commands import admin, demo, evaluate, generate, import_, stack, token
from kamioi.commands import map as map_

COMMAND_MODULES = (stack, token, admin, generate, import_, map_, evaluate, demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kamioi", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module in COMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    sys.exit(args.func(args))

"""`python -m jobs worker [--concurrency N] [--user-slots N] [--db-url URL] [--kind KIND ...] [--module MODULE ...]`."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from jobs.registry import HANDLER_MODULES, load_handler_modules, registered_kinds
from jobs.worker import Worker
from kamioi.settings import get_settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m jobs", description="Kamioi background jobs")
    commands = parser.add_subparsers(dest="command", required=True)
    worker = commands.add_parser("worker", help="run jobs from the queue until SIGTERM")
    worker.add_argument("--concurrency", type=int, default=2, help="jobs of any lane run at once (default 2)")
    worker.add_argument(
        "--user-slots", type=int, default=1,
        help="further slots only user-facing jobs (imports, exports, mails) take (default 1)",
    )  # fmt: skip
    worker.add_argument("--db-url", default=None, help="default: DATABASE_URL (env or .env)")
    worker.add_argument(
        "--kind", action="append", dest="kinds", help="only run these job kinds (default: every registered)"
    )
    worker.add_argument(
        "--module", action="append", default=[], help="also import this module to register its job kinds"
    )
    worker.add_argument("--log-level", default="INFO")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    load_handler_modules([*HANDLER_MODULES, *args.module])
    kinds = args.kinds or registered_kinds()
    unknown = sorted(set(kinds) - set(registered_kinds()))
    if unknown:
        print(f"no handler registered for job kind(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    worker = Worker(
        args.db_url or get_settings().db_url,
        kinds=kinds,
        concurrency=max(1, args.concurrency),
        user_slots=max(0, args.user_slots),
        settings=get_settings(),
    )
    worker.install_signal_handlers()
    return worker.run()


if __name__ == "__main__":
    sys.exit(main())

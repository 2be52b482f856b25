"""`kamioi doctor [--env-file PATH]`: check every service the product depends on, in the environment it
is given (the local `.env` by default, or a production one), and say which setting fixes what fails.
Exit status 1 when any check fails (warnings do not), 0 otherwise."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kamioi.doctor import run_checks
from kamioi.settings import ENV_FILE, Settings

MARKS = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}


def _doctor(args: argparse.Namespace) -> int:
    env_file = Path(args.env_file) if args.env_file else ENV_FILE
    if args.env_file and not env_file.is_file():
        print(f"kamioi doctor: no such file: {env_file}", file=sys.stderr)
        return 2
    settings = Settings(_env_file=env_file)  # type: ignore[call-arg]
    print(f"checking the environment of {env_file} (variables set in the shell win over the file)")
    failed = False
    for finding, seconds in run_checks(settings):
        fix = f"\n{'':24}fix: {finding.fix}" if finding.fix and finding.status != "ok" else ""
        print(f"{MARKS[finding.status]}  {finding.check:<18}{finding.detail} ({seconds:.1f}s){fix}", flush=True)
        failed = failed or finding.status == "fail"
    print("some checks failed" if failed else "every dependency answered", file=sys.stderr)
    return 1 if failed else 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="check the database, replica, migrations, hook, cron, Storage, Upstash, SMTP, LLM and prices",
        description=__doc__,
    )
    parser.add_argument("--env-file", help="a production .env to check instead of the local one")
    parser.set_defaults(func=_doctor)

"""Stack subcommands: up, stop, status, reset, paused."""

from __future__ import annotations

import argparse
import subprocess
import time

from cli.invocation import kamioi_command
from kamioi.settings import ENV_FILE, get_settings
from local_stack.manager import Stack, make_log
from local_stack.processes import StackError
from local_stack.tokens import token_for


def _print_panel(stack: Stack) -> None:
    env = stack.env_values()
    keys = stack.keys
    issuer = stack.settings.jwt_issuer
    print("\nKamioi local stack is running.\n")
    width = max(len(k) for k in env) + 2
    for key, value in env.items():
        print(f"  {key:<{width}}{value}")
    print(f"  {'JWKS':<{width}}{stack.settings.keys_dir / 'jwks.json'}")
    kamioi = kamioi_command()
    print(f"  {'ADMIN_TOKEN':<{width}}{token_for('admin', keys, issuer)[:40]}...  ({kamioi} token --as admin)")
    print(f"  {'USER_TOKEN':<{width}}{token_for('user', keys, issuer)[:40]}...  ({kamioi} token --as user)")
    print(f"\n  written to {ENV_FILE}\n")


def _up(args: argparse.Namespace) -> int:
    started = time.monotonic()
    stack = Stack(get_settings())
    try:
        stack.up(make_log(quiet=args.quiet))
    except StackError as err:
        print(f"kamioi up: {err}")
        return 1
    if not args.quiet:
        _print_panel(stack)
    print(f"stack up in {time.monotonic() - started:.1f}s")
    return 0


def _stop(_: argparse.Namespace) -> int:
    stopped = Stack(get_settings()).stop()
    print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    return 0


def _status(_: argparse.Namespace) -> int:
    rows = Stack(get_settings()).status()
    for name, running, address in rows:
        print(f"  {name:<16}{'running' if running else 'stopped':<10}{address}")
    return 0 if all(running for _, running, _ in rows) else 3


def _reset(args: argparse.Namespace) -> int:
    stack = Stack(get_settings())
    stack.reset()
    print("local stack removed (database, cache); keys kept")
    return _up(args) if args.up else 0


def _paused(args: argparse.Namespace) -> int:
    command = args.command_line[1:] if args.command_line[:1] == ["--"] else args.command_line
    if not command:
        print("kamioi paused: give a command to run, e.g. kamioi paused -- pg_prove ...")
        return 2
    with Stack(get_settings()).worker_paused():
        return subprocess.call(command)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    up = subparsers.add_parser(
        "up",
        help="start the local stack, or check it (idempotent)",
        description="Start what is not running: PostgreSQL and its read replica, redis-server, the Upstash"
        " endpoint, the Storage and SMTP stand-ins, the API and the worker; apply new migrations; write every"
        " URL and key (and this stack's ports and state dir) to .env. A process whose settings changed since"
        " it started (e.g. a new LLM_API_KEY in .env) is restarted; the rest are left alone.",
    )
    up.add_argument("--quiet", action="store_true", help="print only the final line")
    up.set_defaults(func=_up)
    subparsers.add_parser(
        "stop",
        help="stop every local service",
        description="Stop the worker, the API, the stand-ins, redis-server, the replica and PostgreSQL"
        " (SIGTERM: a running import commits its chunk and goes back to the queue). Data is kept.",
    ).set_defaults(func=_stop)
    subparsers.add_parser(
        "status",
        help="what runs where (exit 3 if anything is down)",
        description="One line per local service: running or stopped, its address, the replica's lag and"
        " the SMTP catcher's mail count. Exit status 3 when anything is down.",
    ).set_defaults(func=_status)
    reset = subparsers.add_parser("reset", help="stop and delete the local database and cache")
    reset.add_argument("--up", action="store_true", help="bring a fresh stack up afterwards")
    reset.add_argument("--quiet", action="store_true")
    reset.set_defaults(func=_reset)
    paused = subparsers.add_parser(
        "paused", help="run a command with the stack's worker stopped (tests that need the data to hold still)"
    )
    paused.add_argument("command_line", nargs=argparse.REMAINDER, metavar="-- COMMAND")
    paused.set_defaults(func=_paused)

"""`kamioi token --as admin|user`: a Supabase-shaped access token for the seeded users."""

from __future__ import annotations

import argparse

from kamioi.settings import get_settings
from local_stack.keys import ensure_keys
from local_stack.tokens import token_for


def _token(args: argparse.Namespace) -> int:
    settings = get_settings()
    print(token_for(args.who, ensure_keys(settings.keys_dir), settings.jwt_issuer, args.alg))
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "token",
        help="print an access token for the seeded admin or user",
        description="Print a Supabase-shaped access token (1 hour) for a seeded user, signed with the local"
        ' stack\'s key: for curl (-H "Authorization: Bearer $(.venv/bin/kamioi token --as admin)").',
    )
    parser.add_argument(
        "--as",
        dest="who",
        choices=["admin", "user"],
        required=True,
        help="admin: admin@kamioi.local (user_role admin, every /v1 route); user: user@kamioi.local (RLS only)",
    )
    parser.add_argument("--alg", choices=["ES256", "HS256"], default="ES256", help="HS256 = legacy shared secret")
    parser.set_defaults(func=_token)

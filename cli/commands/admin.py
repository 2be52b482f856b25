"""`kamioi admin create | promote`: users and roles through Supabase Auth's admin API (kamioi.auth_admin).

Needs SUPABASE_URL of a project with Auth (not the Docker-free local stack, whose seeded users are
SQL) and SUPABASE_SECRET_KEY. Exit status: 0 done, 1 Auth refused (the message says why), 2 bad
arguments or no such user.
"""

from __future__ import annotations

import argparse
import secrets
import sys

from kamioi.settings import get_settings

ROLES = ("admin", "user")  # kamioi.auth_admin.Role; that module (supabase-py: ~1 s) is imported on use


def _create(args: argparse.Namespace) -> int:
    from supabase_auth.errors import AuthError

    from kamioi.auth_admin import auth_admin, create_user

    password = args.password or secrets.token_urlsafe(18)
    try:
        user = create_user(auth_admin(get_settings()), email=args.email, password=password, role=args.role)
    except AuthError as error:
        print(f"kamioi admin create: Auth refused: {error.message}", file=sys.stderr)
        return 1
    print(f"created {args.role} {user.email} ({user.id})")
    if not args.password:
        print(f"password: {password}  (shown once; the user can change it)")
    return 0


def _promote(args: argparse.Namespace) -> int:
    from supabase_auth.errors import AuthError

    from kamioi.auth_admin import UserNotFound, auth_admin, find_user_by_email, set_role

    admin = auth_admin(get_settings())
    try:
        user_id = args.user_id or find_user_by_email(admin, args.email).id
        user = set_role(admin, user_id, args.role)
    except UserNotFound as error:
        print(f"kamioi admin promote: {error}", file=sys.stderr)
        return 2
    except AuthError as error:
        print(f"kamioi admin promote: Auth refused: {error.message}", file=sys.stderr)
        return 1
    print(f"{user.email} ({user.id}) is now {args.role}")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("admin", help="create users and set roles through Supabase Auth's admin API")
    commands = parser.add_subparsers(dest="admin_command", required=True)
    create = commands.add_parser("create", help="a confirmed email user with a role (admin by default)")
    create.add_argument("--email", required=True)
    create.add_argument("--password", help="default: a random one, printed once")
    create.add_argument("--role", choices=ROLES, default="admin")
    create.set_defaults(func=_create)
    promote = commands.add_parser("promote", help="set an existing user's role (admin by default; --role user demotes)")
    who = promote.add_mutually_exclusive_group(required=True)
    who.add_argument("--email")
    who.add_argument("--user-id")
    promote.add_argument("--role", choices=ROLES, default="admin")
    promote.set_defaults(func=_promote)

"""`kamioi admin` through supabase-py's auth admin API, against a local GoTrue-protocol server over the
local database: the user lands in auth.users and app_metadata.user_role becomes the profile's role."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from cli.commands import admin as admin_command
from cli.main import build_parser
from kamioi.auth_admin import UserNotFound, auth_admin, find_user_by_email
from kamioi.settings import PROJECT_ROOT, Settings
from local_stack.standins.gotrue_server import serve_in_thread


@pytest.fixture(scope="module")
def auth_url(settings: Settings) -> Iterator[str]:
    with serve_in_thread(settings.db_url, secret_key=settings.supabase_secret_key) as url:
        yield url


@pytest.fixture
def email(db: psycopg.Connection[Any]) -> Iterator[str]:
    address = f"ops-{uuid.uuid4().hex[:10]}@test.kamioi.local"
    yield address
    db.execute("delete from auth.users where email = %s", (address,))
    db.commit()


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def kamioi_admin(
    auth_url: str, settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Ran]:
    """`kamioi admin ARGS` in this process (the console script's parser and command), pointed at the server."""

    def run(*args: str, key: str | None = None) -> Ran:
        change = {"supabase_url": auth_url, **({"supabase_secret_key": key} if key is not None else {})}
        monkeypatch.setattr(admin_command, "get_settings", lambda: settings.model_copy(update=change))
        parsed = build_parser().parse_args(["admin", *args])
        code = parsed.func(parsed)
        out = capsys.readouterr()
        return Ran(code, out.out, out.err)

    return run


def test_the_console_script_creates_an_admin(auth_url: str, db: psycopg.Connection[Any], email: str) -> None:
    created = subprocess.run(
        [sys.executable, "-m", "cli", "admin", "create", "--email", email],
        cwd=PROJECT_ROOT, env={**os.environ, "SUPABASE_URL": auth_url}, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert "password: " in created.stdout
    assert profile_role(db, email) == "admin"


def profile_role(db: psycopg.Connection[Any], email: str) -> str | None:
    row = db.execute(
        "select p.role from public.profiles as p join auth.users as u on u.id = p.id where u.email = %s", (email,)
    ).fetchone()
    db.commit()
    return None if row is None else str(row[0])


def test_create_then_demote_then_promote(
    kamioi_admin: Callable[..., Ran], db: psycopg.Connection[Any], email: str
) -> None:
    created = kamioi_admin("create", "--email", email, "--password", "correct horse battery")
    assert created.returncode == 0, created.stderr
    assert "password: " not in created.stdout
    assert profile_role(db, email) == "admin"
    row = db.execute(
        "select email_confirmed_at is not null, encrypted_password like '$2%%' from auth.users where email = %s",
        (email,),
    ).fetchone()
    assert row == (True, True)

    demoted = kamioi_admin("promote", "--email", email.upper(), "--role", "user")
    assert demoted.returncode == 0, demoted.stderr
    assert profile_role(db, email) == "user"
    user_id = str(db.execute("select id from auth.users where email = %s", (email,)).fetchone()[0])  # type: ignore[index]
    assert kamioi_admin("promote", "--user-id", user_id).returncode == 0
    assert profile_role(db, email) == "admin"


def test_refusals_are_reported(
    kamioi_admin: Callable[..., Ran], auth_url: str, email: str, settings: Settings
) -> None:
    assert kamioi_admin("create", "--email", email, "--role", "user").returncode == 0
    again = kamioi_admin("create", "--email", email)
    assert again.returncode == 1 and "already been registered" in again.stderr
    wrong_key = kamioi_admin("promote", "--email", email, key="sb_secret_wrong")
    assert wrong_key.returncode == 1 and "secret key" in wrong_key.stderr
    with pytest.raises(UserNotFound):
        find_user_by_email(auth_admin(settings.model_copy(update={"supabase_url": auth_url})), "nobody@nowhere.test")

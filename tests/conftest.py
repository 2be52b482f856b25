"""Fixtures shared by every suite: the running local stack (`kamioi up`) and its settings."""

from __future__ import annotations

import shutil
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from kamioi.db import connect
from kamioi.settings import Settings, get_settings
from local_stack.keys import KeyMaterial, ensure_keys
from local_stack.manager import Stack
from local_stack.standins.storage_server import ObjectRoot, serve_in_thread


@pytest.fixture(scope="session")
def settings() -> Settings:
    return get_settings()


@pytest.fixture(scope="session")
def keys(settings: Settings) -> KeyMaterial:
    return ensure_keys(settings.keys_dir)


@pytest.fixture
def db(settings: Settings) -> Iterator[psycopg.Connection[Any]]:
    """A connection as `postgres` (the role migrations run as; not a superuser)."""
    with connect(settings.db_url) as conn:
        yield conn


@pytest.fixture
def superuser_db(settings: Settings) -> Iterator[psycopg.Connection[Any]]:
    with connect(settings.superuser_db_url, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="session")
def stack_worker_paused(settings: Settings) -> Iterator[None]:
    """Paused for the whole session, and started once at its end (a worker this process started and
    then stopped would linger as its unreaped child)."""
    with Stack(settings).worker_paused():
        yield


@pytest.fixture(scope="session")
def make_user(settings: Settings) -> Callable[[str], str]:
    """A new auth user (its profile created by the sign-up trigger) with this role; returns its id."""

    def make(role: str) -> str:
        user_id = str(uuid.uuid4())
        with connect(settings.superuser_db_url, autocommit=True) as conn:
            conn.execute(
                "insert into auth.users (id, aud, role, email) values (%s, 'authenticated', 'authenticated', %s)",
                (user_id, f"{role}-{user_id[:8]}@test.kamioi.local"),
            )
            conn.execute("update public.profiles set role = %s where id = %s", (role, user_id))
        return user_id

    return make


@pytest.fixture(scope="session")
def admin_id(make_user: Callable[[str], str]) -> str:
    return make_user("admin")


@pytest.fixture(scope="session")
def user_id(make_user: Callable[[str], str]) -> str:
    return make_user("user")


@dataclass(frozen=True)
class LocalStorage:
    url: str  # Storage's base URL, what SUPABASE_STORAGE_URL names
    objects: ObjectRoot

    def clear(self) -> None:
        for bucket in self.objects.root.iterdir():
            shutil.rmtree(bucket)


@pytest.fixture(scope="session")
def storage_server(tmp_path_factory: pytest.TempPathFactory, keys: KeyMaterial) -> Iterator[LocalStorage]:
    """The local Storage stand-in (local_stack/standins/storage_server.py) with the stack's keys; objects per test."""
    root: Path = tmp_path_factory.mktemp("storage")
    with serve_in_thread(root, secret_key=keys.secret_key, jwt_secret=keys.jwt_secret) as url:
        yield LocalStorage(url=url, objects=ObjectRoot(root))


def free_port() -> int:
    """A local port free right now (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture(scope="session")
def dead_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    return free_port()


@pytest.fixture(scope="session")
def dead_url(dead_port: int) -> str:
    """An http:// URL nothing answers at."""
    return f"http://127.0.0.1:{dead_port}"

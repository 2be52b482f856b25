"""Fixtures shared by every suite: the running local stack (`kamioi up`) and its settings."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from kamioi.db import connect
from kamioi.settings import Settings, get_settings
from kamioi.stack.keys import KeyMaterial, ensure_keys
from kamioi.stack.manager import Stack


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
    """`kamioi up` runs a worker of its own, which would race the tests' workers and inline runs for
    their imports: stop it, and start it again when the session ends (once: a worker this process
    started and then stopped would linger as its unreaped child)."""
    stack = Stack(settings)
    service = next(s for s in stack.services() if s.name == "worker")
    was_running = service.stop(settings)
    try:
        yield
    finally:
        if was_running:
            service.start(settings, stack.env_values())

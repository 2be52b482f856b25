"""Fixtures shared by every suite: the running local stack (`kamioi up`) and its settings."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from kamioi.db import connect
from kamioi.settings import Settings, get_settings
from kamioi.stack.keys import KeyMaterial, ensure_keys


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

"""Fixtures for the mapping tests: the fake OpenAI-compatible server as a real subprocess, async
database connections to the local stack, and a per-test slice of the database (catalog entries and
merchant keys under a random tag, removed afterwards)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from psycopg import AsyncConnection

from kamioi.settings import Settings
from local_stack.standins.llm_server import FakeLLMControl
from tests.mapping.support import DbSlice

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def fake_llm_root() -> Iterator[str]:
    """`python -m local_stack.standins.llm_server` on a free port for the whole session: http://host:port."""
    with subprocess.Popen(
        [sys.executable, "-m", "local_stack.standins.llm_server", "--port", "0"],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            banner = proc.stdout.readline()
            assert banner.startswith("fake LLM server listening on "), f"server did not start: {banner!r}"
            yield banner.split()[-1].removesuffix("/v1")
        finally:
            proc.terminate()
            proc.wait(timeout=10)


@pytest.fixture
async def fake_llm(fake_llm_root: str) -> AsyncIterator[FakeLLMControl]:
    """The shared server, reset to good mode with default knobs and zeroed counters."""
    async with httpx.AsyncClient() as http:
        fake = FakeLLMControl(fake_llm_root, http)
        await fake.set_mode("good", fail_first=2, slow_s=2.0, retry_after_s=0)
        yield fake


@pytest.fixture
async def aconn(settings: Settings) -> AsyncIterator[AsyncConnection[Any]]:
    """An idle autocommit connection as `postgres`, the way the worker and the CLI hand it to the resolver."""
    async with await AsyncConnection.connect(settings.db_url, autocommit=True, prepare_threshold=None) as conn:
        yield conn


@pytest.fixture
async def db_slice(aconn: AsyncConnection[Any]) -> AsyncIterator[DbSlice]:
    piece = DbSlice(aconn)
    yield piece
    await piece.cleanup()

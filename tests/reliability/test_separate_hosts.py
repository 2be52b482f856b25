"""The seeds' deployment: the API and two workers on separate hosts (three state directories, no shared
disk), a browser's resumable upload to Storage, the first worker killed mid-import, the second finishing
it exactly once from the checkpoint with range reads (bench/separate_hosts.py has the drill)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.separate_hosts import run
from kamioi.settings import Settings
from tests.conftest import LocalStorage

pytestmark = pytest.mark.usefixtures("stack_worker_paused")


def test_api_and_workers_share_no_disk_and_a_killed_import_finishes_once(
    settings: Settings, storage_server: LocalStorage, tmp_path: Path
) -> None:
    result = run(settings, storage_server.url, tmp_path, rows=40_000, chunk_rows=2_000)
    assert result.passed, result.problems
    assert result.bytes_asked_after_kill < result.file_bytes - result.checkpoint_at_kill + (8 << 20)


@pytest.mark.slow
def test_a_million_rows_across_separate_hosts(settings: Settings, storage_server: LocalStorage, tmp_path: Path) -> None:
    result = run(settings, storage_server.url, tmp_path, rows=1_000_000, chunk_rows=50_000)
    assert result.passed, result.problems

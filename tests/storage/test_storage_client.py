"""kamioi.storage's upload and download link (supabase-py's storage client) against the local Storage server."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from kamioi.settings import Settings
from kamioi.storage import StorageUnavailable, upload_file_with_link
from tests.conftest import LocalStorage


@pytest.fixture
def storage_settings(settings: Settings, storage_server: LocalStorage) -> Settings:
    storage_server.clear()
    return settings.model_copy(update={"supabase_storage_url": storage_server.url})


def test_upload_replaces_the_object_and_links_to_it(
    storage_settings: Settings, storage_server: LocalStorage, tmp_path: Path
) -> None:
    report = tmp_path / "report.csv"
    for content in (b"id,name\n1,first try\n", b"id,name\n1,retried\n"):
        report.write_bytes(content)
        uploaded = upload_file_with_link(
            storage_settings, bucket="exports", object_path="imports/2026-12/job 7.csv", file=report
        )
        assert storage_server.objects.read("exports", "imports/2026-12/job 7.csv") == content
        # The link works without any key, as the admin's browser would fetch it.
        assert httpx.get(uploaded.signed_url).content == content
    assert uploaded.signed_url.startswith(storage_server.url + "/object/sign/exports/")
    assert uploaded.path == "imports/2026-12/job 7.csv"


def test_a_link_is_for_its_object_only(
    storage_settings: Settings, storage_server: LocalStorage, tmp_path: Path
) -> None:
    (tmp_path / "a.csv").write_bytes(b"a\n")
    uploaded = upload_file_with_link(storage_settings, bucket="exports", object_path="a.csv", file=tmp_path / "a.csv")
    storage_server.objects.put("exports", "b.csv", b"secret\n")
    assert httpx.get(uploaded.signed_url.replace("/a.csv?", "/b.csv?")).status_code == 400


@pytest.mark.parametrize("failure", ["wrong key", "unreachable"])
def test_storage_failures_raise_storage_unavailable(
    storage_settings: Settings, dead_url: str, tmp_path: Path, failure: str
) -> None:
    wrong_key, unreachable = {"supabase_secret_key": "sb_secret_wrong"}, {"supabase_storage_url": dead_url}
    change = wrong_key if failure == "wrong key" else unreachable
    broken = storage_settings.model_copy(update=change)
    (tmp_path / "a.csv").write_bytes(b"a\n")
    with pytest.raises(StorageUnavailable):
        upload_file_with_link(broken, bucket="exports", object_path="a.csv", file=tmp_path / "a.csv")

"""kamioi.storage's upload and signed download link (supabase-py's storage client) against the local Storage server."""

from __future__ import annotations

from pathlib import Path

import httpx
import jwt
import pytest

from kamioi.settings import Settings
from kamioi.storage import StorageObjectMissing, StorageUnavailable, sign_download, upload_file
from tests.conftest import LocalStorage


@pytest.fixture
def storage_settings(settings: Settings, storage_server: LocalStorage) -> Settings:
    storage_server.clear()
    return settings.model_copy(update={"supabase_storage_url": storage_server.url})


async def link(settings: Settings, object_path: str, expires_s: int = 60) -> str:
    async with httpx.AsyncClient() as http:
        return await sign_download(http, settings, bucket="exports", object_path=object_path, expires_s=expires_s)


async def fetch(url: str) -> httpx.Response:
    """A GET without any key, as the admin's browser would send it."""
    async with httpx.AsyncClient() as browser:
        return await browser.get(url)


async def test_upload_replaces_the_object_and_a_link_reads_it(
    storage_settings: Settings, storage_server: LocalStorage, tmp_path: Path
) -> None:
    report = tmp_path / "report.csv"
    for content in (b"id,name\n1,first try\n", b"id,name\n1,retried\n"):
        report.write_bytes(content)
        upload_file(storage_settings, bucket="exports", object_path="imports/2026-12/job 7.csv", file=report)
        assert storage_server.objects.read("exports", "imports/2026-12/job 7.csv") == content
        signed = await link(storage_settings, "imports/2026-12/job 7.csv")
        assert (await fetch(signed)).content == content
    assert signed.startswith(storage_server.url + "/object/sign/exports/")


async def test_a_link_is_for_its_object_only_and_for_its_lifetime(
    storage_settings: Settings, storage_server: LocalStorage, tmp_path: Path
) -> None:
    (tmp_path / "a.csv").write_bytes(b"a\n")
    upload_file(storage_settings, bucket="exports", object_path="a.csv", file=tmp_path / "a.csv")
    storage_server.objects.put("exports", "b.csv", b"secret\n")
    signed = await link(storage_settings, "a.csv", expires_s=120)
    assert (await fetch(signed.replace("/a.csv?", "/b.csv?"))).status_code == 400
    claims = jwt.decode(signed.split("token=", 1)[1], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 120
    with pytest.raises(StorageObjectMissing):
        await link(storage_settings, "never-uploaded.csv")


@pytest.mark.parametrize("failure", ["wrong key", "unreachable"])
def test_storage_failures_raise_storage_unavailable(
    storage_settings: Settings, dead_url: str, tmp_path: Path, failure: str
) -> None:
    wrong_key, unreachable = {"supabase_secret_key": "sb_secret_wrong"}, {"supabase_storage_url": dead_url}
    change = wrong_key if failure == "wrong key" else unreachable
    broken = storage_settings.model_copy(update=change)
    (tmp_path / "a.csv").write_bytes(b"a\n")
    with pytest.raises(StorageUnavailable):
        upload_file(broken, bucket="exports", object_path="a.csv", file=tmp_path / "a.csv")

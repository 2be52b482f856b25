"""The Storage stand-in speaks Supabase Storage's protocol to standard clients: a TUS client (tuspy, as
tus-js-client or Uppy in a browser) uploads resumably with a signed upload token, supabase-py's storage
client creates and reads buckets, and kamioi.storage.ObjectReader reads objects with range requests."""

from __future__ import annotations

import io
import os

import httpx
import pytest
from storage3.exceptions import StorageApiError
from storage3.types import SignedUploadURL
from supabase import SupabaseStorageClient
from tusclient import client as tus
from tusclient.exceptions import TusCommunicationError
from tusclient.uploader.uploader import Uploader

from kamioi.settings import Settings
from kamioi.storage import ObjectChanged, ObjectReader, storage_url
from tests.conftest import LocalStorage

CHUNK = 64 * 1024


@pytest.fixture
def storage_settings(settings: Settings, storage_server: LocalStorage) -> Settings:
    storage_server.clear()
    return settings.model_copy(update={"supabase_storage_url": storage_server.url})


def storage_client(settings: Settings, http: httpx.Client) -> SupabaseStorageClient:
    return SupabaseStorageClient(
        storage_url(settings), {"Authorization": f"Bearer {settings.supabase_secret_key}"}, http_client=http
    )


def signed_upload(settings: Settings, bucket: str, path: str) -> SignedUploadURL:
    with httpx.Client() as http:
        return storage_client(settings, http).from_(bucket).create_signed_upload_url(path)


def tus_uploader(
    settings: Settings, data: bytes, bucket: str, path: str, token: str, url: str | None = None
) -> Uploader:
    client = tus.TusClient(f"{storage_url(settings)}upload/resumable/sign", headers={"x-signature": token})
    metadata = {"bucketName": bucket, "objectName": path, "contentType": "text/csv"}
    return client.uploader(file_stream=io.BytesIO(data), chunk_size=CHUNK, metadata=metadata, url=url)


def test_a_resumable_upload_survives_a_lost_browser(storage_settings: Settings, storage_server: LocalStorage) -> None:
    data = os.urandom(5 * CHUNK + 123)
    grant = signed_upload(storage_settings, "imports", "admin/1/big.csv")
    first = tus_uploader(storage_settings, data, "imports", "admin/1/big.csv", grant["token"])
    first.upload(stop_at=2 * CHUNK)  # the tab closes here
    assert not storage_server.objects.file("imports", "admin/1/big.csv").exists()  # no half object
    # A new page resumes from the server's offset (HEAD), sending only the rest.
    second = tus_uploader(storage_settings, data, "imports", "admin/1/big.csv", grant["token"], url=first.url)
    assert second.offset == 2 * CHUNK
    second.upload()
    assert storage_server.objects.read("imports", "admin/1/big.csv") == data


def test_a_signed_upload_token_is_for_its_object_and_for_uploads_only(
    storage_settings: Settings, storage_server: LocalStorage
) -> None:
    grant = signed_upload(storage_settings, "imports", "admin/1/a.csv")
    with pytest.raises(TusCommunicationError):  # another object with this token
        tus_uploader(storage_settings, b"x,y\n", "imports", "admin/1/other.csv", grant["token"]).upload()
    with pytest.raises(TusCommunicationError):  # no token at all
        tus.TusClient(f"{storage_url(storage_settings)}upload/resumable/sign").uploader(
            file_stream=io.BytesIO(b"x"), metadata={"bucketName": "imports", "objectName": "admin/1/a.csv"}
        ).upload()
    # An upload token does not download, and a download token (the same signature scheme) does not upload.
    download = httpx.get(grant["signed_url"].replace("/object/upload/sign/", "/object/sign/"))
    assert download.status_code == 400
    storage_server.objects.put("imports", "admin/1/readable.csv", b"a\n")
    with httpx.Client() as http:
        link = storage_client(storage_settings, http).from_("imports").create_signed_url("admin/1/readable.csv", 60)
    signed_link = link["signedURL"]
    assert signed_link is not None
    overwrite = httpx.put(signed_link.replace("/object/sign/", "/object/upload/sign/"), content=b"evil\n")
    assert overwrite.status_code == 400
    assert storage_server.objects.read("imports", "admin/1/readable.csv") == b"a\n"


def test_buckets_through_the_storage_client(storage_settings: Settings) -> None:
    with httpx.Client() as http:
        storage = storage_client(storage_settings, http)
        storage.create_bucket("imports", options={"public": False, "file_size_limit": 1 << 30})
        assert storage.get_bucket("imports").public is False
        assert [bucket.id for bucket in storage.list_buckets()] == ["imports"]
        with pytest.raises(StorageApiError):
            storage.get_bucket("nope")


def test_range_reads_start_at_the_offset_and_insist_on_the_version(
    storage_settings: Settings, storage_server: LocalStorage
) -> None:
    data = os.urandom(3 * CHUNK)
    storage_server.objects.put("imports", "r.csv", data)
    head = httpx.head(
        f"{storage_url(storage_settings)}object/authenticated/imports/r.csv",
        headers={"Authorization": f"Bearer {storage_settings.supabase_secret_key}"},
    )
    etag = head.headers["etag"]
    with ObjectReader(storage_settings, bucket="imports", object_path="r.csv", size=len(data), etag=etag) as reader:
        reader.verify()
        reader.seek(CHUNK + 7)
        assert reader.read(100) == data[CHUNK + 7 : CHUNK + 107]
        assert reader.readall() == data[CHUNK + 107 :]
        assert reader.requests == 1  # one ranged GET from the offset, never the whole object again
    os.utime(storage_server.objects.file("imports", "r.csv"), (1, 1))  # replaced: a new version
    with (
        ObjectReader(storage_settings, bucket="imports", object_path="r.csv", size=len(data), etag=etag) as reader,
        pytest.raises(ObjectChanged),
    ):
        reader.verify()

"""A real local HTTP server speaking Supabase Storage's protocol, for the calls the backend and a browser make.

Objects are files under a root directory (`<root>/<bucket>/<path>`); internal state (bucket settings,
resumable uploads in progress) lives under `<root>/.storage/`, a name no bucket can take. A bucket
exists once created (`POST /bucket`) or once an object is in it (private then).

With the secret key (`Authorization: Bearer <SUPABASE_SECRET_KEY>`):
- `POST /storage/v1/bucket` `{"id", "name", "public", "file_size_limit", "allowed_mime_types"}`,
  `GET /storage/v1/bucket/<id>`, `GET /storage/v1/bucket`: buckets, as storage3's bucket calls send them.
- `POST /storage/v1/object/<bucket>/<path>`: upload, multipart (field `file`, what storage3 sends) or a
  raw body (streamed); `x-upsert: true` replaces an object, otherwise that is 400 with statusCode 409.
- `GET|HEAD /storage/v1/object[/authenticated]/<bucket>/<path>`: download, with `Range` (206) and `ETag`.
- `DELETE /storage/v1/object/<bucket>` `{"prefixes": [...]}`: remove objects.
- `POST /storage/v1/object/sign/<bucket>/<path>` `{"expiresIn": N}`: a signed download URL
  (`/object/sign/...?token=JWT`, HS256 over `{"url": "<bucket>/<path>"}` with the project's JWT secret).
- `POST /storage/v1/object/upload/sign/<bucket>/<path>`: a signed upload URL
  (`{"url": "/object/upload/sign/...?token=JWT", "token"}`, valid 2 hours, for that one object).
- TUS 1.0.0 resumable uploads (creation, creation-with-upload, termination) at `/storage/v1/upload/resumable`:
  `POST` with `Upload-Length` and `Upload-Metadata` (`bucketName`, `objectName`, `contentType`) answers 201
  and a `Location`; `HEAD` tells the offset; `PATCH` (`application/offset+octet-stream`, `Upload-Offset`)
  appends; the object appears when the last byte arrives. Under `/upload/resumable/sign` the same
  requests carry an upload token in `x-signature` instead of the key (what a browser holds).
Without a key: `GET /storage/v1/object/sign/<bucket>/<path>?token=...` downloads (ranges too) until the
token expires; `PUT /storage/v1/object/upload/sign/<bucket>/<path>?token=...` uploads once. A missing
object is 400 with statusCode 404 (Storage's answer). `GET /healthz` for readiness.

    python -m local_stack.standins.storage_server --port 54390 --root .local/storage

`kamioi up` runs it so an export's download link and the admin's uploads work locally; keys come from
the settings (.env).
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import socket
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import jwt
from fastapi import FastAPI, Header, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from python_multipart.multipart import parse_options_header
from starlette.requests import ClientDisconnect

from kamioi.settings import get_settings
from local_stack.standins.server import serve_app_in_thread, socket_root, uvicorn_server

API_PATH = "/storage/v1"
# Every object read, with its Range: what a test or drill checks a resumed reader asked for.
log = logging.getLogger("local_stack.storage")
STATE_DIR = ".storage"  # under the root: bucket settings and resumable uploads, never an object
UPLOAD_SIGNATURE_S = 2 * 3600  # Storage's default lifetime of a signed upload URL
TUS_VERSION = "1.0.0"
TUS_MAX_SIZE = 50 * 1024**3
UPLOAD_SCOPE = "upload"  # a claim that makes a token an upload token (a download token cannot upload)


class StorageError(Exception):
    def __init__(self, status: int, status_code: str, error: str, message: str) -> None:
        super().__init__(message)
        self.status, self.status_code, self.error, self.message = status, status_code, error, message


def _not_found() -> StorageError:
    return StorageError(400, "404", "not_found", "Object not found")


class ObjectRoot:
    """The objects on disk; tests put and read objects through it."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def file(self, bucket: str, path: str) -> Path:
        parts = [bucket, *path.split("/")]
        if any(part in ("", ".", "..") or "\\" in part for part in parts) or bucket == STATE_DIR:
            raise StorageError(400, "400", "InvalidKey", f"Invalid key: {bucket}/{path}")
        return self.root.joinpath(*parts)

    def put(self, bucket: str, path: str, data: bytes) -> None:
        target = self.file(bucket, path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    def read(self, bucket: str, path: str) -> bytes:
        return self.file(bucket, path).read_bytes()

    def existing(self, bucket: str, path: str) -> Path:
        target = self.file(bucket, path)
        if not target.is_file():
            raise _not_found()
        return target

    def state(self, *parts: str) -> Path:
        directory = self.root.joinpath(STATE_DIR, *parts[:-1])
        directory.mkdir(parents=True, exist_ok=True)
        return directory / parts[-1]

    def bucket(self, bucket_id: str) -> dict[str, Any] | None:
        """The bucket's settings; a folder of objects with none recorded is a private bucket."""
        settings = self.state("buckets", f"{bucket_id}.json")
        if settings.is_file():
            recorded: dict[str, Any] = json.loads(settings.read_text())
            limits = {key: recorded.get(key) for key in ("file_size_limit", "allowed_mime_types")}
            return _bucket_record(
                bucket_id, public=bool(recorded.get("public")), created=settings.stat().st_mtime, **limits
            )
        folder = self.root / bucket_id
        if bucket_id != STATE_DIR and folder.is_dir():
            return _bucket_record(bucket_id, public=False, created=folder.stat().st_mtime)
        return None


async def _body_chunks(request: Request) -> AsyncIterator[bytes]:
    """The file of an upload: a multipart form's `file` part (storage3), else the raw body, streamed."""
    content_type, _ = parse_options_header(request.headers.get("content-type", ""))
    if content_type == b"multipart/form-data":
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise StorageError(400, "400", "InvalidRequest", "the form has no file")
        while chunk := await upload.read(1 << 20):
            yield chunk
        return
    async for chunk in request.stream():
        yield chunk


async def _store(objects: ObjectRoot, bucket: str, path: str, chunks: AsyncIterator[bytes], *, upsert: bool) -> str:
    target = objects.file(bucket, path)
    if target.exists() and not upsert:
        raise StorageError(400, "409", "Duplicate", "The resource already exists")
    target.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the target, then renamed: a reader never sees half an object.
    with tempfile.NamedTemporaryFile(dir=target.parent, prefix=".upload-", delete=False) as out:
        try:
            async for chunk in chunks:
                out.write(chunk)
        except ClientDisconnect as error:  # an abandoned upload (the client hit its own limit): no object
            os.unlink(out.name)
            raise StorageError(400, "400", "IncompleteBody", "the client went away mid-upload") from error
        except BaseException:
            os.unlink(out.name)
            raise
    os.replace(out.name, target)
    return f"{bucket}/{path}"


def _bucket_record(bucket_id: str, *, public: bool, created: float, **limits: Any) -> dict[str, Any]:
    """A bucket as Storage's GET /bucket answers it (the fields storage3's Bucket model requires)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created))
    return {
        "id": bucket_id,
        "name": bucket_id,
        "owner": "",
        "public": public,
        "created_at": stamp,
        "updated_at": stamp,
        "file_size_limit": limits.get("file_size_limit"),
        "allowed_mime_types": limits.get("allowed_mime_types"),
    }


def _decode_metadata(value: str) -> str:
    return base64.b64decode(value.encode()).decode()


def _tus_metadata(header: str) -> dict[str, str]:
    """`key base64value,key2 base64value2` (TUS Upload-Metadata)."""
    pairs: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in header.split(","))):
        key, _, value = item.partition(" ")
        try:
            pairs[key] = _decode_metadata(value) if value else ""
        except ValueError as error:
            raise StorageError(400, "400", "InvalidParameter", "Invalid Upload-Metadata header") from error
    return pairs


def create_app(root: Path, *, secret_key: str, jwt_secret: str) -> FastAPI:
    app = FastAPI(title="local Supabase Storage")
    objects = ObjectRoot(root)

    @app.exception_handler(StorageError)
    async def storage_error(_: Request, error: StorageError) -> JSONResponse:
        body = {"statusCode": error.status_code, "error": error.error, "message": error.message}
        return JSONResponse(body, status_code=error.status)

    def require_key(authorization: str | None) -> None:
        if authorization != f"Bearer {secret_key}":
            raise StorageError(400, "403", "Unauthorized", "invalid signature")

    def sign(claims: dict[str, Any], expires_in: int) -> str:
        now = int(time.time())
        return jwt.encode({**claims, "iat": now, "exp": now + expires_in}, jwt_secret, "HS256")

    def verify(token: str, bucket: str, path: str, *, upload: bool) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token, jwt_secret, algorithms=["HS256"], options={"require": ["exp", "url"]}
            )
        except jwt.PyJWTError as error:
            raise StorageError(400, "400", "InvalidJWT", str(error)) from error
        if claims["url"] != f"{bucket}/{path}" or (claims.get("scope") == UPLOAD_SCOPE) != upload:
            raise StorageError(400, "400", "InvalidSignature", "the token is for another object or use")
        return claims

    def serve(request: Request, bucket: str, path: str) -> FileResponse:
        # FileResponse answers Range requests (206, Content-Range) and sends an ETag of the file's version.
        found = objects.existing(bucket, path)
        log.info("%s %s/%s range=%s", request.method, bucket, path, request.headers.get("range", "-"))
        return FileResponse(found, media_type="application/octet-stream")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    # Buckets -------------------------------------------------------------------------------------
    @app.post(API_PATH + "/bucket")
    async def create_bucket(request: Request, authorization: Annotated[str | None, Header()] = None) -> dict[str, str]:
        require_key(authorization)
        body: Any = await request.json()
        bucket_id = body.get("id") or body.get("name") if isinstance(body, dict) else None
        if not isinstance(bucket_id, str) or objects.bucket(bucket_id) is not None:
            raise StorageError(400, "409", "Duplicate", "The resource already exists")
        objects.file(bucket_id, "probe")  # validates the name
        settings = {
            "public": bool(body.get("public", False)),
            "file_size_limit": body.get("file_size_limit"),
            "allowed_mime_types": body.get("allowed_mime_types"),
        }
        objects.state("buckets", f"{bucket_id}.json").write_text(json.dumps(settings))
        (root / bucket_id).mkdir(exist_ok=True)
        return {"name": bucket_id}

    @app.get(API_PATH + "/bucket/{bucket_id}")
    async def get_bucket(bucket_id: str, authorization: Annotated[str | None, Header()] = None) -> dict[str, Any]:
        require_key(authorization)
        found = objects.bucket(bucket_id)
        if found is None:
            raise StorageError(400, "404", "Bucket not found", "Bucket not found")
        return found

    @app.get(API_PATH + "/bucket")
    def list_buckets(authorization: Annotated[str | None, Header()] = None) -> list[dict[str, Any]]:
        require_key(authorization)
        names = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name != STATE_DIR)
        return [bucket for name in names if (bucket := objects.bucket(name)) is not None]

    # Signed URLs ---------------------------------------------------------------------------------
    @app.post(API_PATH + "/object/sign/{bucket}/{path:path}")
    async def sign_download(
        bucket: str, path: str, request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> dict[str, str]:
        require_key(authorization)
        objects.existing(bucket, path)
        body: Any = await request.json()
        expires_in = int(body.get("expiresIn", 0)) if isinstance(body, dict) else 0
        if expires_in <= 0:
            raise StorageError(400, "400", "InvalidRequest", "expiresIn must be a positive number of seconds")
        token = sign({"url": f"{bucket}/{path}"}, expires_in)
        return {"signedURL": f"/object/sign/{quote(bucket)}/{quote(path)}?token={token}"}

    @app.api_route(API_PATH + "/object/sign/{bucket}/{path:path}", methods=["GET", "HEAD"])
    async def signed_download(
        request: Request, bucket: str, path: str, token: Annotated[str, Query()] = ""
    ) -> FileResponse:
        verify(token, bucket, path, upload=False)
        return serve(request, bucket, path)

    @app.post(API_PATH + "/object/upload/sign/{bucket}/{path:path}")
    async def sign_upload(
        bucket: str,
        path: str,
        authorization: Annotated[str | None, Header()] = None,
        x_upsert: Annotated[str, Header()] = "false",
    ) -> dict[str, str]:
        require_key(authorization)
        objects.file(bucket, path)
        claims = {"url": f"{bucket}/{path}", "scope": UPLOAD_SCOPE, "upsert": x_upsert == "true"}
        token = sign(claims, UPLOAD_SIGNATURE_S)
        return {"url": f"/object/upload/sign/{quote(bucket)}/{quote(path)}?token={token}", "token": token}

    @app.put(API_PATH + "/object/upload/sign/{bucket}/{path:path}")
    async def signed_upload(
        bucket: str, path: str, request: Request, token: Annotated[str, Query()] = ""
    ) -> dict[str, str]:
        claims = verify(token, bucket, path, upload=True)
        key = await _store(objects, bucket, path, _body_chunks(request), upsert=bool(claims.get("upsert")))
        return {"Key": key, "Id": str(uuid.uuid4())}

    # Objects -------------------------------------------------------------------------------------
    @app.api_route(API_PATH + "/object/authenticated/{bucket}/{path:path}", methods=["GET", "HEAD"])
    async def authenticated_download(
        request: Request, bucket: str, path: str, authorization: Annotated[str | None, Header()] = None
    ) -> FileResponse:
        require_key(authorization)
        return serve(request, bucket, path)

    @app.api_route(API_PATH + "/object/{bucket}/{path:path}", methods=["GET", "HEAD"])
    async def download(
        request: Request, bucket: str, path: str, authorization: Annotated[str | None, Header()] = None
    ) -> FileResponse:
        require_key(authorization)
        return serve(request, bucket, path)

    @app.post(API_PATH + "/object/{bucket}/{path:path}")
    async def upload(
        bucket: str,
        path: str,
        request: Request,
        authorization: Annotated[str | None, Header()] = None,
        x_upsert: Annotated[str, Header()] = "false",
    ) -> dict[str, str]:
        require_key(authorization)
        key = await _store(objects, bucket, path, _body_chunks(request), upsert=x_upsert == "true")
        return {"Key": key, "Id": str(uuid.uuid4())}

    @app.delete(API_PATH + "/object/{bucket}")
    async def remove(
        bucket: str, request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> list[dict[str, str]]:
        require_key(authorization)
        body: Any = await request.json()
        removed = []
        for path in body.get("prefixes", []) if isinstance(body, dict) else []:
            target = objects.file(bucket, str(path))
            if target.is_file():
                target.unlink()
                removed.append({"bucket_id": bucket, "name": str(path)})
        return removed

    # Resumable uploads (TUS) ---------------------------------------------------------------------
    tus_headers = {"Tus-Resumable": TUS_VERSION}

    def upload_state(upload_id: str) -> tuple[dict[str, Any], Path]:
        if not upload_id.isalnum():
            raise StorageError(404, "404", "not_found", "Upload not found")
        info = objects.state("tus", f"{upload_id}.json")
        if not info.is_file():
            raise StorageError(404, "404", "not_found", "Upload not found")
        state: dict[str, Any] = json.loads(info.read_text())
        return state, objects.state("tus", f"{upload_id}.part")

    def authorise(request: Request, signed: bool, bucket: str, path: str) -> bool:
        """The key, or (signed routes) an upload token for this object; returns whether it may upsert."""
        if not signed:
            require_key(request.headers.get("authorization"))
            return request.headers.get("x-upsert") == "true"
        signature = request.headers.get("x-signature")
        if not signature:
            raise StorageError(400, "400", "InvalidSignature", "Missing x-signature header")
        return bool(verify(signature, bucket, path, upload=True).get("upsert"))

    @app.options(API_PATH + "/upload/resumable{rest:path}")
    async def tus_options() -> Response:
        return Response(
            status_code=204,
            headers={
                **tus_headers,
                "Tus-Version": TUS_VERSION,
                "Tus-Extension": "creation,creation-with-upload,termination",
                "Tus-Max-Size": str(TUS_MAX_SIZE),
            },
        )

    async def tus_create(request: Request, signed: bool) -> Response:
        if request.headers.get("tus-resumable") != TUS_VERSION:
            return Response(status_code=412, headers={**tus_headers, "Tus-Version": TUS_VERSION})
        metadata = _tus_metadata(request.headers.get("upload-metadata", ""))
        bucket, path = metadata.get("bucketName", ""), metadata.get("objectName", "")
        length = request.headers.get("upload-length", "")
        if not bucket or not path or not length.isdigit() or int(length) > TUS_MAX_SIZE:
            raise StorageError(400, "400", "InvalidParameter", "Upload-Length and bucketName, objectName are required")
        upsert = authorise(request, signed, bucket, path)
        if objects.file(bucket, path).exists() and not upsert:
            raise StorageError(409, "409", "Duplicate", "The resource already exists")
        upload_id = uuid.uuid4().hex
        state = {"bucket": bucket, "path": path, "length": int(length), "upsert": upsert}
        objects.state("tus", f"{upload_id}.part").touch()
        objects.state("tus", f"{upload_id}.json").write_text(json.dumps(state))
        endpoint = f"{str(request.base_url).rstrip('/')}{API_PATH}/upload/resumable{'/sign' if signed else ''}"
        location = f"{endpoint}/{upload_id}"
        offset = 0
        if request.headers.get("content-type") == "application/offset+octet-stream":
            offset = await tus_append(request, signed, upload_id, expected=0)  # creation-with-upload
        return Response(status_code=201, headers={**tus_headers, "Location": location, "Upload-Offset": str(offset)})

    async def tus_append(request: Request, signed: bool, upload_id: str, *, expected: int | None = None) -> int:
        state, part = upload_state(upload_id)
        authorise(request, signed, state["bucket"], state["path"])
        offset = part.stat().st_size
        claimed = request.headers.get("upload-offset", "")
        if (expected if expected is not None else (int(claimed) if claimed.isdigit() else -1)) != offset:
            raise StorageError(409, "409", "InvalidOffset", f"the upload is at offset {offset}")
        with part.open("ab") as out:
            async for chunk in request.stream():
                if out.tell() + len(chunk) > state["length"]:
                    raise StorageError(413, "413", "EntityTooLarge", "more bytes than Upload-Length")
                out.write(chunk)
            offset = out.tell()
        if offset == state["length"]:  # complete: the object appears whole
            target = objects.file(state["bucket"], state["path"])
            if target.exists() and not state["upsert"]:
                raise StorageError(409, "409", "Duplicate", "The resource already exists")
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(part, target)
            objects.state("tus", f"{upload_id}.json").unlink()
        return offset

    for signed in (False, True):
        prefix = API_PATH + "/upload/resumable" + ("/sign" if signed else "")

        async def create(request: Request, signed: bool = signed) -> Response:
            return await tus_create(request, signed)

        async def patch(upload_id: str, request: Request, signed: bool = signed) -> Response:
            if request.headers.get("content-type") != "application/offset+octet-stream":
                return Response(status_code=415, headers=tus_headers)
            offset = await tus_append(request, signed, upload_id)
            return Response(status_code=204, headers={**tus_headers, "Upload-Offset": str(offset)})

        async def head(upload_id: str) -> Response:
            state, part = upload_state(upload_id)
            headers = {"Upload-Offset": str(part.stat().st_size), "Upload-Length": str(state["length"])}
            return Response(status_code=200, headers={**tus_headers, **headers, "Cache-Control": "no-store"})

        async def delete(upload_id: str, request: Request, signed: bool = signed) -> Response:
            state, part = upload_state(upload_id)
            authorise(request, signed, state["bucket"], state["path"])
            part.unlink(missing_ok=True)
            objects.state("tus", f"{upload_id}.json").unlink(missing_ok=True)
            return Response(status_code=204, headers=tus_headers)

        app.add_api_route(prefix, create, methods=["POST"])
        app.add_api_route(prefix + "/{upload_id}", patch, methods=["PATCH"])
        app.add_api_route(prefix + "/{upload_id}", head, methods=["HEAD"])
        app.add_api_route(prefix + "/{upload_id}", delete, methods=["DELETE"])

    return app


@contextmanager
def serve_in_thread(root: Path, *, secret_key: str, jwt_secret: str) -> Iterator[str]:
    """Run the server on a background thread; yields Storage's base URL (http://host:port/storage/v1)."""
    with serve_app_in_thread(create_app(root, secret_key=secret_key, jwt_secret=jwt_secret)) as url:
        yield url + API_PATH


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--root", type=Path, required=True, help="directory holding the objects")
    args = parser.parse_args(argv)
    settings = get_settings()
    if not settings.supabase_secret_key or not settings.supabase_jwt_secret:
        parser.error("SUPABASE_SECRET_KEY and SUPABASE_JWT_SECRET must be set (kamioi up writes them to .env)")
    args.root.mkdir(parents=True, exist_ok=True)
    sock = socket.create_server((args.host, args.port))
    print(f"local Storage listening on {socket_root(sock)}{API_PATH}", flush=True)
    app = create_app(args.root, secret_key=settings.supabase_secret_key, jwt_secret=settings.supabase_jwt_secret)
    uvicorn_server(app).run(sockets=[sock])


if __name__ == "__main__":
    main()

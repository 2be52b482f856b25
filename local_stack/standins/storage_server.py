"""A real local HTTP server speaking Supabase Storage's object protocol, for the calls the backend makes.

Objects are files under a root directory (`<root>/<bucket>/<path>`; buckets appear on first upload).
With the secret key (`Authorization: Bearer <SUPABASE_SECRET_KEY>`):
- `POST /storage/v1/object/<bucket>/<path>`: multipart upload (field `file`); `x-upsert: true`
  replaces an existing object, otherwise that is 400 with statusCode 409, as Storage answers.
- `GET /storage/v1/object/<bucket>/<path>`: authenticated download.
- `POST /storage/v1/object/sign/<bucket>/<path>` `{"expiresIn": N}`: `{"signedURL": "/object/sign/...?token=JWT"}`,
  the token an HS256 JWT over `{"url": "<bucket>/<path>"}` with the project's JWT secret.
Without a key: `GET /storage/v1/object/sign/<bucket>/<path>?token=...` downloads until the token
expires. A missing object is 400 with statusCode 404 (Storage's answer). `GET /healthz` for readiness.

    python -m local_stack.standins.storage_server --port 54390 --root .local/storage

`kamioi up` runs it so an export's download link works locally; keys come from the settings (.env).
"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import jwt
from fastapi import FastAPI, Form, Header, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse

from kamioi.settings import get_settings
from local_stack.standins.server import serve_app_in_thread, socket_root, uvicorn_server

API_PATH = "/storage/v1"


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
        if any(part in ("", ".", "..") or "\\" in part for part in parts):
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

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post(API_PATH + "/object/sign/{bucket}/{path:path}")
    async def sign(
        bucket: str, path: str, request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> dict[str, str]:
        require_key(authorization)
        objects.existing(bucket, path)
        body: Any = await request.json()
        expires_in = int(body.get("expiresIn", 0)) if isinstance(body, dict) else 0
        if expires_in <= 0:
            raise StorageError(400, "400", "InvalidRequest", "expiresIn must be a positive number of seconds")
        now = int(time.time())
        token = jwt.encode({"url": f"{bucket}/{path}", "iat": now, "exp": now + expires_in}, jwt_secret, "HS256")
        return {"signedURL": f"/object/sign/{quote(bucket)}/{quote(path)}?token={token}"}

    @app.get(API_PATH + "/object/sign/{bucket}/{path:path}")
    async def signed_download(bucket: str, path: str, token: Annotated[str, Query()] = "") -> FileResponse:
        try:
            claims = jwt.decode(token, jwt_secret, algorithms=["HS256"], options={"require": ["exp", "url"]})
        except jwt.PyJWTError as error:
            raise StorageError(400, "400", "InvalidJWT", str(error)) from error
        if claims["url"] != f"{bucket}/{path}":
            raise StorageError(400, "400", "InvalidSignature", "the token is for another object")
        return FileResponse(objects.existing(bucket, path), media_type="application/octet-stream")

    @app.get(API_PATH + "/object/{bucket}/{path:path}")
    async def download(
        bucket: str, path: str, authorization: Annotated[str | None, Header()] = None
    ) -> FileResponse:
        require_key(authorization)
        return FileResponse(objects.existing(bucket, path), media_type="application/octet-stream")

    @app.post(API_PATH + "/object/{bucket}/{path:path}")
    async def upload(
        bucket: str,
        path: str,
        file: UploadFile,
        cache_control: Annotated[str, Form(alias="cacheControl")] = "3600",
        authorization: Annotated[str | None, Header()] = None,
        x_upsert: Annotated[str, Header()] = "false",
    ) -> dict[str, str]:
        require_key(authorization)
        target = objects.file(bucket, path)
        if target.exists() and x_upsert != "true":
            raise StorageError(400, "409", "Duplicate", "The resource already exists")
        target.parent.mkdir(parents=True, exist_ok=True)
        # Written beside the target, then renamed: a reader never sees half an object.
        with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as out:
            while chunk := await file.read(1 << 20):
                out.write(chunk)
        os.replace(out.name, target)
        return {"Key": f"{bucket}/{path}", "Id": str(uuid.uuid4())}

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

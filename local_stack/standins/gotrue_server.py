"""A real local HTTP server speaking Supabase Auth's (GoTrue's) admin user API over the local database.

For the calls `kamioi admin` makes, with the secret key (`Authorization: Bearer <SUPABASE_SECRET_KEY>`):
- `POST /auth/v1/admin/users` {email, password?, email_confirm?, app_metadata?, user_metadata?}:
  a row in auth.users (password bcrypt-hashed by pgcrypto), as GoTrue writes it, so the database's
  own triggers (profile on sign-up, role from app_metadata) run as on a real project; 422
  `email_exists` for a taken address.
- `GET /auth/v1/admin/users?page=&per_page=`: `{"users": [...], "aud": "authenticated"}`, oldest first.
- `PUT /auth/v1/admin/users/<id>` {app_metadata?, user_metadata?}: merged into the user's metadata,
  as GoTrue merges them; 404 `user_not_found`.
Errors are GoTrue's JSON: {"code", "error_code", "msg"}.

    python -m local_stack.standins.gotrue_server --port 54399    # database and key from the settings (.env)

Clients use http://HOST:PORT as SUPABASE_URL (supabase-py appends /auth/v1). Locally `kamioi up` does
not run it (the seeded users are SQL); the tests do.
"""

from __future__ import annotations

import argparse
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any

import psycopg
from fastapi import FastAPI, Header, Query, Request
from fastapi.responses import JSONResponse
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict

from kamioi.db import connect
from kamioi.settings import get_settings
from local_stack.standins.server import serve_app_in_thread, socket_root, uvicorn_server

ADMIN_USERS = "/auth/v1/admin/users"
_USER_COLUMNS = (
    "id, aud, role, email, email_confirmed_at, raw_app_meta_data, raw_user_meta_data, is_anonymous,"
    " last_sign_in_at, created_at, updated_at"
)


class AuthError(Exception):
    def __init__(self, status: int, error_code: str, msg: str) -> None:
        super().__init__(msg)
        self.status, self.error_code, self.msg = status, error_code, msg


class NewUser(BaseModel):
    model_config = ConfigDict(extra="ignore")
    email: str
    password: str | None = None
    email_confirm: bool = False
    app_metadata: dict[str, Any] = {}
    user_metadata: dict[str, Any] = {}


class UserChange(BaseModel):
    model_config = ConfigDict(extra="ignore")
    app_metadata: dict[str, Any] | None = None
    user_metadata: dict[str, Any] | None = None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def user_json(row: dict[str, Any]) -> dict[str, Any]:
    """A user as GoTrue answers it."""
    return {
        "id": str(row["id"]),
        "aud": row["aud"],
        "role": row["role"],
        "email": row["email"],
        "phone": "",
        "email_confirmed_at": _iso(row["email_confirmed_at"]),
        "confirmed_at": _iso(row["email_confirmed_at"]),
        "last_sign_in_at": _iso(row["last_sign_in_at"]),
        "app_metadata": row["raw_app_meta_data"] or {},
        "user_metadata": row["raw_user_meta_data"] or {},
        "identities": [],
        "is_anonymous": row["is_anonymous"],
        "created_at": _iso(row["created_at"]),
        "updated_at": _iso(row["updated_at"]),
    }


def create_app(db_url: str, *, secret_key: str) -> FastAPI:
    app = FastAPI(title="local Supabase Auth (admin users)")

    @app.exception_handler(AuthError)
    async def auth_error(_: Request, error: AuthError) -> JSONResponse:
        body = {"code": error.status, "error_code": error.error_code, "msg": error.msg}
        return JSONResponse(body, status_code=error.status)

    def require_key(authorization: str | None) -> None:
        if authorization != f"Bearer {secret_key}":
            raise AuthError(401, "no_authorization", "This endpoint requires a valid secret key")

    @app.get("/auth/v1/health")
    def health() -> dict[str, str]:
        return {"name": "GoTrue", "description": "local admin users"}

    @app.post(ADMIN_USERS)
    def create_user(new: NewUser, authorization: Annotated[str | None, Header()] = None) -> dict[str, Any]:
        require_key(authorization)
        app_metadata = {"provider": "email", "providers": ["email"], **new.app_metadata}
        with connect(db_url, autocommit=True) as conn, conn.cursor(row_factory=dict_row) as cur:
            try:
                row = cur.execute(
                    "insert into auth.users (id, aud, role, email, encrypted_password, email_confirmed_at,"
                    " raw_app_meta_data, raw_user_meta_data)"
                    " values (%s, 'authenticated', 'authenticated', lower(%s),"
                    " case when %s::text is null then null else extensions.crypt(%s, extensions.gen_salt('bf')) end,"
                    " case when %s then now() end, %s, %s)"
                    f" returning {_USER_COLUMNS}",
                    (uuid.uuid4(), new.email, new.password, new.password, new.email_confirm,
                     Jsonb(app_metadata), Jsonb(new.user_metadata)),
                ).fetchone()  # fmt: skip
            except psycopg.errors.UniqueViolation as error:
                raise AuthError(
                    422, "email_exists", "A user with this email address has already been registered"
                ) from error
        assert row is not None
        return user_json(row)

    @app.get(ADMIN_USERS)
    def list_users(
        authorization: Annotated[str | None, Header()] = None,
        page: Annotated[int, Query(ge=1)] = 1,
        per_page: Annotated[int, Query(ge=1, le=1000)] = 50,
    ) -> dict[str, Any]:
        require_key(authorization)
        with connect(db_url, autocommit=True) as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                f"select {_USER_COLUMNS} from auth.users order by created_at, id limit %s offset %s",
                (per_page, (page - 1) * per_page),
            ).fetchall()
        return {"users": [user_json(row) for row in rows], "aud": "authenticated"}

    @app.put(ADMIN_USERS + "/{user_id}")
    def update_user(
        user_id: uuid.UUID, change: UserChange, authorization: Annotated[str | None, Header()] = None
    ) -> dict[str, Any]:
        require_key(authorization)
        with connect(db_url, autocommit=True) as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                "update auth.users set raw_app_meta_data = coalesce(raw_app_meta_data, '{}') || %s,"
                " raw_user_meta_data = coalesce(raw_user_meta_data, '{}') || %s, updated_at = now()"
                f" where id = %s returning {_USER_COLUMNS}",
                (Jsonb(change.app_metadata or {}), Jsonb(change.user_metadata or {}), user_id),
            ).fetchone()
        if row is None:
            raise AuthError(404, "user_not_found", "User not found")
        return user_json(row)

    return app


@contextmanager
def serve_in_thread(db_url: str, *, secret_key: str) -> Iterator[str]:
    """Run the server on a background thread; yields the URL to use as SUPABASE_URL."""
    with serve_app_in_thread(create_app(db_url, secret_key=secret_key)) as root:
        yield root


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    settings = get_settings()
    sock = socket.create_server((args.host, args.port))
    print(f"local Auth admin API on {socket_root(sock)}/auth/v1", flush=True)
    uvicorn_server(create_app(settings.db_url, secret_key=settings.supabase_secret_key)).run(sockets=[sock])


if __name__ == "__main__":
    main()

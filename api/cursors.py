"""Signed keyset cursors for every keyset page: opaque to clients, forged or altered ones refused.

A cursor is the last row's sort key plus an HMAC over that key and the list's scope (the list's name,
its filters and its sort), so a cursor only continues the list it came from: an edited key, a cursor
from another list or another filter set, or a truncated one is a 422, never a 500 or a different
page. The key comes from API_CURSOR_SECRET, else from the project's secrets, so every API worker
accepts every other worker's cursors.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import secrets
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

from api.problems import ProblemError
from kamioi.settings import Settings

log = logging.getLogger("api.cursors")

KeyPart = int | str | None
_TAG_BYTES = 16
# payload.tag, both URL-safe base64 without padding; the tag is always 22 characters.
SIGNED_CURSOR_PATTERN = r"^[A-Za-z0-9_-]{1,700}\.[A-Za-z0-9_-]{22}$"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_part(value: object) -> KeyPart:
    """A sort-key value as JSON keeps it exactly: dates, timestamps, decimals and uuids as text."""
    if value is None or (isinstance(value, int | str) and not isinstance(value, bool)):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    raise TypeError(f"not a sort-key value: {value!r}")


class CursorSigner:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    @classmethod
    def from_settings(cls, settings: Settings) -> CursorSigner:
        material = settings.api_cursor_secret or settings.supabase_jwt_secret + settings.supabase_secret_key
        if not material:
            log.warning("no API_CURSOR_SECRET or project secret: cursors only work in this process")
            return cls(secrets.token_bytes(32))
        return cls(hashlib.sha256(b"kamioi.cursor\0" + material.encode()).digest())

    def _tag(self, scope: str, payload: bytes) -> bytes:
        return hmac.new(self._secret, scope.encode() + b"\0" + payload, hashlib.sha256).digest()[:_TAG_BYTES]

    def encode(self, scope: str, key: tuple[object, ...]) -> str:
        payload = json.dumps([key_part(v) for v in key], separators=(",", ":")).encode()
        return f"{_b64(payload)}.{_b64(self._tag(scope, payload))}"

    def decode(self, scope: str, cursor: str, arity: int) -> list[KeyPart]:
        """The key a cursor carries; 422 unless this signer made it for this scope."""
        try:
            payload_text, tag_text = cursor.split(".")
            payload, tag = _unb64(payload_text), _unb64(tag_text)
        except (ValueError, binascii.Error) as error:
            raise invalid_cursor() from error
        if not hmac.compare_digest(tag, self._tag(scope, payload)):
            raise invalid_cursor()
        values = json.loads(payload)  # signed by us: well-formed
        if not isinstance(values, list) or len(values) != arity:
            raise invalid_cursor()
        return values

    def decode_timestamp_id(self, scope: str, cursor: str) -> tuple[datetime, int]:
        """A (created_at, id) cursor, as encoded from (created_at, id)."""
        at, row_id = self.decode(scope, cursor, 2)
        try:
            if not isinstance(at, str) or not _is_int(row_id):
                raise TypeError
            parsed = datetime.fromisoformat(at)
        except (TypeError, ValueError) as error:
            raise invalid_cursor() from error
        if parsed.tzinfo is None:
            raise invalid_cursor()
        assert isinstance(row_id, int)
        return parsed, row_id

    def decode_int_pair(self, scope: str, cursor: str) -> tuple[int, int]:
        """An (int, int) cursor such as (line_number, id)."""
        first, second = self.decode(scope, cursor, 2)
        if not isinstance(first, int) or not isinstance(second, int) or not (_is_int(first) and _is_int(second)):
            raise invalid_cursor()
        return first, second

    def decode_id(self, scope: str, cursor: str) -> int:
        """An (id,) cursor."""
        (row_id,) = self.decode(scope, cursor, 1)
        if not isinstance(row_id, int) or not _is_int(row_id):
            raise invalid_cursor()
        return row_id


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def invalid_cursor() -> ProblemError:
    return ProblemError(
        422, "invalid cursor: pass back the next_cursor of the previous page unchanged, with the same filters"
    )

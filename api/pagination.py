"""Keyset pages with opaque cursors: the client passes back what it got, never an offset."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Generic, TypeVar

from pydantic import BaseModel, Field

from api.problems import ProblemError

T = TypeVar("T")

CURSOR_PATTERN = r"^[A-Za-z0-9_-]{1,512}$"


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` for the next page; null when there is none."
    )


def encode_cursor(*key: int | str | datetime) -> str:
    """Encode the last row's sort key (URL-safe base64 of a JSON array, padding stripped)."""
    values = [v.isoformat() if isinstance(v, datetime) else v for v in key]
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def decode_timestamp_id(cursor: str) -> tuple[datetime, int]:
    """A (created_at, id) cursor, as written by encode_cursor(created_at, id)."""
    values = _decode(cursor)
    try:
        at, row_id = values
        if not isinstance(at, str) or not isinstance(row_id, int) or isinstance(row_id, bool):
            raise TypeError
        parsed = datetime.fromisoformat(at)
    except (TypeError, ValueError) as error:
        raise _invalid() from error
    if parsed.tzinfo is None:
        raise _invalid()
    return parsed, row_id


def decode_int_pair(cursor: str) -> tuple[int, int]:
    """An (int, int) cursor such as (line_number, id), as written by encode_cursor(a, b)."""
    values = _decode(cursor)
    if len(values) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise _invalid()
    first, second = values
    assert isinstance(first, int) and isinstance(second, int)
    return first, second


def _decode(cursor: str) -> list[object]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (binascii.Error, ValueError) as error:
        raise _invalid() from error
    if not isinstance(values, list):
        raise _invalid()
    return values


def _invalid() -> ProblemError:
    return ProblemError(400, "invalid cursor; pass back the next_cursor of the previous page unchanged")

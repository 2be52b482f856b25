"""Links that work without a token: an API path plus an expiry and an HMAC over both.

The worker puts one in the mail about a finished import (the rejected-rows CSV), so the admin can
open it from a mail client; the API accepts the signature in place of a token on the routes that
take one (`GET /v1/imports/{id}/rejections.csv`). The key is derived from API_CURSOR_SECRET, else
from the project's secrets, which the API and the worker share; without any, nothing is signed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from kamioi.settings import Settings

LINK_TTL_S = 7 * 86400  # as long as an export's signed Storage link
SIGNATURE_PATTERN = r"^[A-Za-z0-9_-]{22}$"


def _key(settings: Settings) -> bytes | None:
    material = settings.api_cursor_secret or settings.supabase_jwt_secret + settings.supabase_secret_key
    return hashlib.sha256(b"kamioi.link\0" + material.encode()).digest() if material else None


def _signature(key: bytes, path: str, expires: int) -> str:
    tag = hmac.new(key, f"{path}\0{expires}".encode(), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(tag).decode().rstrip("=")


def signed_path(settings: Settings, path: str, ttl_s: int = LINK_TTL_S, now: float | None = None) -> str | None:
    """`path?expires=...&signature=...`, or None when there is no key to sign with."""
    key = _key(settings)
    if key is None:
        return None
    expires = int(now if now is not None else time.time()) + ttl_s
    return f"{path}?expires={expires}&signature={_signature(key, path, expires)}"


def link_is_valid(settings: Settings, path: str, expires: int, signature: str, now: float | None = None) -> bool:
    key = _key(settings)
    if key is None or expires < (now if now is not None else time.time()):
        return False
    return hmac.compare_digest(signature, _signature(key, path, expires))

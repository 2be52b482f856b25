"""Access tokens shaped exactly like Supabase Auth's, for local development and tests."""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

import jwt

from local_stack.keys import KeyMaterial

# The users supabase/seed.sql creates.
SEEDED_USERS: dict[str, tuple[str, str]] = {
    "admin": ("00000000-0000-4000-a000-000000000001", "admin@kamioi.local"),
    "user": ("00000000-0000-4000-a000-000000000002", "user@kamioi.local"),
}


def access_token_claims(
    *, user_id: str, email: str, user_role: str, issuer: str, ttl_s: int = 3600, now: int | None = None
) -> dict[str, Any]:
    issued = int(time.time()) if now is None else now
    return {
        "aud": "authenticated",
        "exp": issued + ttl_s,
        "iat": issued,
        "iss": issuer,
        "sub": user_id,
        "email": email,
        "phone": "",
        "app_metadata": {"provider": "email", "providers": ["email"]},
        "user_metadata": {},
        "role": "authenticated",
        "aal": "aal1",
        "amr": [{"method": "password", "timestamp": issued}],
        "session_id": str(uuid.uuid4()),
        "is_anonymous": False,
        # Added by public.custom_access_token_hook from public.profiles.
        "user_role": user_role,
    }


def sign(claims: dict[str, Any], keys: KeyMaterial, alg: Literal["ES256", "HS256"] = "ES256") -> str:
    if alg == "HS256":
        return jwt.encode(claims, keys.jwt_secret, algorithm="HS256")
    return jwt.encode(claims, keys.private_key_pem, algorithm="ES256", headers={"kid": keys.kid})


def token_for(
    who: Literal["admin", "user"], keys: KeyMaterial, issuer: str, alg: Literal["ES256", "HS256"] = "ES256"
) -> str:
    user_id, email = SEEDED_USERS[who]
    return sign(access_token_claims(user_id=user_id, email=email, user_role=who, issuer=issuer), keys, alg)

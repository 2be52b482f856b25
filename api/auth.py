"""Who is calling: Supabase access tokens verified locally, or the project's secret API key.

- Asymmetric tokens (ES256, RS256) are checked against the project's JWKS, fetched from
  SUPABASE_JWKS_URL (with the app's one HTTP client) or read from SUPABASE_JWKS_PATH, kept for
  `max_age_s`, refetched when a token names an unknown kid (at most once per `min_refresh_s`, so
  made-up kids cannot make us hammer the endpoint), and capped at MAX_KEYS keys.
- HS256 tokens only when the legacy SUPABASE_JWT_SECRET is configured.
- The header's alg must equal the key's own alg (no RS/HS confusion); alg none, missing or expired
  exp, wrong aud and wrong iss are refused.
- `sb_secret_...` (Authorization: Bearer or the apikey header) is a server-to-server caller.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
from jwt import PyJWK, PyJWKSet

from api.problems import ProblemError

ASYMMETRIC_ALGORITHMS = frozenset({"ES256", "RS256"})
SECRET_KEY_PREFIX = "sb_secret_"  # noqa: S105 (a prefix, not a secret)
MAX_KEYS = 16
LEEWAY_S = 30  # clock skew between Supabase Auth and this server
# Verified tokens are remembered (an ES256 check costs ~0.1-0.4 ms of CPU, and a dashboard sends
# the same token for an hour), for at most VERIFIED_TTL_S so a key removed from the JWKS stops
# being honoured soon, and never past the token's exp.
VERIFIED_CACHE_SIZE = 4096
VERIFIED_TTL_S = 60.0

log = logging.getLogger("api.auth")


@dataclass(frozen=True)
class Principal:
    """The verified caller. `claims` is what PostgREST would put in request.jwt.claims. Whether a user is
    an admin is their profile's role now (api.roles), never the token's user_role claim."""

    subject: str
    role: str
    claims: dict[str, Any] = field(default_factory=dict)

    @property
    def user_id(self) -> str | None:
        return self.subject if self.role == "authenticated" else None


SERVICE = Principal(subject="service", role="service_role", claims={"role": "service_role"})


def unauthorized(detail: str) -> ProblemError:
    return ProblemError(
        401,
        detail,
        headers={"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{detail}"'},
    )


class JwksKeys:
    """Public signing keys by kid, from a JWKS URL or file."""

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        url: str = "",
        path: str = "",
        max_age_s: float = 600.0,
        min_refresh_s: float = 30.0,
    ) -> None:
        if not url and not path:
            raise ValueError("JwksKeys needs a JWKS url or path")
        self._http, self._url, self._path = http, url, path
        self._max_age_s, self._min_refresh_s = max_age_s, min_refresh_s
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def get(self, kid: str) -> PyJWK | None:
        key = self._keys.get(kid)
        if key is not None and time.monotonic() - self._fetched_at < self._max_age_s:
            return key
        async with self._lock:
            age = time.monotonic() - self._fetched_at
            if age >= self._max_age_s or (kid not in self._keys and age >= self._min_refresh_s):
                await self._refresh()
        return self._keys.get(kid)

    async def _refresh(self) -> None:
        try:
            if self._path:
                document = json.loads(await asyncio.to_thread(Path(self._path).read_text))
            else:
                response = await self._http.get(self._url, timeout=5.0)
                response.raise_for_status()
                document = response.json()
            keys = PyJWKSet.from_dict(document).keys
        except (OSError, ValueError, httpx.HTTPError, jwt.PyJWTError) as error:
            # Keep the keys we have: a JWKS hiccup must not log every admin out.
            log.warning("could not refresh the JWKS", extra={"error": repr(error)})
            self._fetched_at = time.monotonic()
            return
        usable = [k for k in keys if k.key_id and k.algorithm_name in ASYMMETRIC_ALGORITHMS]
        self._keys = {k.key_id: k for k in usable[:MAX_KEYS] if k.key_id}
        self._fetched_at = time.monotonic()


class TokenVerifier:
    def __init__(
        self,
        *,
        keys: JwksKeys | None,
        jwt_secret: str,
        secret_api_key: str,
        audience: str,
        issuer: str,
    ) -> None:
        self._keys = keys
        self._jwt_secret = jwt_secret
        self._secret_api_key = secret_api_key
        self._audience = audience
        self._issuer = issuer
        self._verified: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()

    async def authenticate(self, bearer: str | None, apikey: str | None) -> Principal:
        if bearer:
            if bearer.startswith(SECRET_KEY_PREFIX):
                return self._secret_key(bearer)
            return await self._user(bearer)
        if apikey and apikey.startswith(SECRET_KEY_PREFIX):
            return self._secret_key(apikey)
        raise unauthorized("missing bearer token")

    def remembered(self, bearer: str | None, apikey: str | None) -> Principal | None:
        """The caller when that takes no verification work: the secret key, or a user's token verified
        within VERIFIED_TTL_S and not expired. None: only authenticate() can decide."""
        if bearer and not bearer.startswith(SECRET_KEY_PREFIX):
            remembered = self._verified.get(bearer)
            if remembered is None or time.time() >= remembered[0]:
                return None
            return _signed_in_user(remembered[1])
        presented = bearer or apikey
        if presented and presented.startswith(SECRET_KEY_PREFIX) and self._is_secret_key(presented):
            return SERVICE
        return None

    def _is_secret_key(self, presented: str) -> bool:
        return bool(self._secret_api_key) and hmac.compare_digest(presented.encode(), self._secret_api_key.encode())

    def _secret_key(self, presented: str) -> Principal:
        if self._is_secret_key(presented):
            return SERVICE
        raise unauthorized("invalid secret API key")

    async def _user(self, token: str) -> Principal:
        principal = _signed_in_user(await self._verified_claims(token))
        if principal is None:
            raise unauthorized("the token is not a signed-in user's access token")
        return principal

    async def _verified_claims(self, token: str) -> dict[str, Any]:
        now = time.time()
        remembered = self._verified.get(token)
        if remembered is not None and now < remembered[0]:
            self._verified.move_to_end(token)
            return remembered[1]
        claims = await self._verify(token)
        expires = min(float(claims["exp"]) + LEEWAY_S, now + VERIFIED_TTL_S)
        self._verified[token] = (expires, claims)
        if len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return claims

    async def _verify(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:  # also InvalidTokenError: a non-string kid, an unknown crit
            raise unauthorized("malformed token") from error
        alg = header.get("alg")
        key: Any
        if alg in ASYMMETRIC_ALGORITHMS and self._keys is not None:
            kid = header.get("kid")
            jwk = await self._keys.get(kid) if isinstance(kid, str) else None
            if jwk is None:
                raise unauthorized("unknown signing key")
            if jwk.algorithm_name != alg:
                raise unauthorized("token algorithm does not match its signing key")
            key = jwk.key
        elif alg == "HS256" and self._jwt_secret:
            key = self._jwt_secret
        else:
            raise unauthorized(f"unsupported token algorithm: {alg}")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self._audience,
                issuer=self._issuer,
                leeway=LEEWAY_S,
                options={"require": ["exp", "sub", "aud", "iss"]},
            )
        except jwt.ExpiredSignatureError as error:
            raise unauthorized("the token has expired") from error
        except jwt.InvalidAudienceError as error:
            raise unauthorized("the token is for another audience") from error
        except jwt.InvalidIssuerError as error:
            raise unauthorized("the token was issued by someone else") from error
        except jwt.InvalidSignatureError as error:
            raise unauthorized("bad token signature") from error
        except jwt.PyJWTError as error:
            raise unauthorized("invalid token") from error
        return claims


def _signed_in_user(claims: dict[str, Any]) -> Principal | None:
    """The principal of a verified user access token; None for other tokens (anon, service_role)."""
    subject, role = claims.get("sub"), claims.get("role")
    if not isinstance(subject, str) or role != "authenticated":
        return None
    return Principal(subject=subject, role=role, claims=claims)

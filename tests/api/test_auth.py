"""The auth matrix on an admin endpoint: every way in, and every way a token is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from kamioi.settings import Settings
from local_stack.keys import KeyMaterial
from local_stack.tokens import access_token_claims

AppClient = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]

ENDPOINT = "/v1/stats/dashboard"


def claims_for(settings: Settings, user_id: str, **changes: object) -> dict[str, object]:
    claims = access_token_claims(
        user_id=user_id, email="admin@test.kamioi.local", user_role="admin", issuer=settings.jwt_issuer
    )
    claims.update(changes)
    return claims


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def assert_refused(client: httpx.AsyncClient, headers: dict[str, str], status: int, detail: str) -> None:
    response = await client.get(ENDPOINT, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status
    assert detail in problem["detail"]
    assert problem["request_id"] == response.headers["x-request-id"]
    if status == 401:
        assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')


async def test_no_token(client: httpx.AsyncClient) -> None:
    await assert_refused(client, {}, 401, "missing bearer token")


async def test_admin_token_passes(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> None:
    assert (await client.get(ENDPOINT, headers=admin_headers)).status_code == 200


async def test_user_token_is_forbidden(client: httpx.AsyncClient, user_headers: dict[str, str]) -> None:
    await assert_refused(client, user_headers, 403, "for admins")


async def test_bad_signature(client: httpx.AsyncClient, settings: Settings, keys: KeyMaterial, admin_id: str) -> None:
    impostor = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode(claims_for(settings, admin_id), impostor, algorithm="ES256", headers={"kid": keys.kid})
    await assert_refused(client, bearer(token), 401, "bad token signature")


async def test_alg_none(client: httpx.AsyncClient, settings: Settings, keys: KeyMaterial, admin_id: str) -> None:
    token = jwt.encode(claims_for(settings, admin_id), "", algorithm="none", headers={"kid": keys.kid})
    await assert_refused(client, bearer(token), 401, "unsupported token algorithm: none")


async def test_expired(client: httpx.AsyncClient, settings: Settings, keys: KeyMaterial, admin_id: str) -> None:
    an_hour_ago = int(time.time()) - 3600
    claims = claims_for(settings, admin_id, iat=an_hour_ago - 3600, exp=an_hour_ago)
    token = jwt.encode(claims, keys.private_key_pem, algorithm="ES256", headers={"kid": keys.kid})
    await assert_refused(client, bearer(token), 401, "expired")


async def test_missing_exp(client: httpx.AsyncClient, settings: Settings, keys: KeyMaterial, admin_id: str) -> None:
    claims = claims_for(settings, admin_id)
    del claims["exp"]
    token = jwt.encode(claims, keys.private_key_pem, algorithm="ES256", headers={"kid": keys.kid})
    await assert_refused(client, bearer(token), 401, "invalid token")


async def test_wrong_audience(client: httpx.AsyncClient, settings: Settings, keys: KeyMaterial, admin_id: str) -> None:
    token = jwt.encode(
        claims_for(settings, admin_id, aud="some-other-api"),
        keys.private_key_pem,
        algorithm="ES256",
        headers={"kid": keys.kid},
    )
    await assert_refused(client, bearer(token), 401, "another audience")


async def test_wrong_issuer(client: httpx.AsyncClient, settings: Settings, keys: KeyMaterial, admin_id: str) -> None:
    token = jwt.encode(
        claims_for(settings, admin_id, iss="https://evil.example/auth/v1"),
        keys.private_key_pem,
        algorithm="ES256",
        headers={"kid": keys.kid},
    )
    await assert_refused(client, bearer(token), 401, "issued by someone else")


async def test_unknown_kid(client: httpx.AsyncClient, settings: Settings, keys: KeyMaterial, admin_id: str) -> None:
    token = jwt.encode(
        claims_for(settings, admin_id), keys.private_key_pem, algorithm="ES256", headers={"kid": "not-our-key"}
    )
    await assert_refused(client, bearer(token), 401, "unknown signing key")


async def test_hs256_with_the_public_key_as_secret_is_refused(
    client: httpx.AsyncClient, settings: Settings, keys: KeyMaterial, admin_id: str
) -> None:
    """Key confusion: an HS256 token 'signed' with the published public key must not verify."""
    public_pem = (
        serialization.load_pem_private_key(keys.private_key_pem, password=None)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    header = {"alg": "HS256", "typ": "JWT", "kid": keys.kid}
    token = _hmac_token(header, claims_for(settings, admin_id), public_pem)
    await assert_refused(client, bearer(token), 401, "bad token signature")


async def test_rs256_token_under_an_es256_kid_is_refused(
    client: httpx.AsyncClient, settings: Settings, keys: KeyMaterial, admin_id: str
) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(claims_for(settings, admin_id), rsa_key, algorithm="RS256", headers={"kid": keys.kid})
    await assert_refused(client, bearer(token), 401, "does not match its signing key")


async def test_hs256_legacy_secret_passes(
    client: httpx.AsyncClient, settings: Settings, keys: KeyMaterial, admin_id: str
) -> None:
    token = jwt.encode(claims_for(settings, admin_id), keys.jwt_secret, algorithm="HS256")
    assert (await client.get(ENDPOINT, headers=bearer(token))).status_code == 200


async def test_hs256_refused_when_no_legacy_secret_is_configured(
    app_client: AppClient, settings: Settings, keys: KeyMaterial, admin_id: str
) -> None:
    token = jwt.encode(claims_for(settings, admin_id), keys.jwt_secret, algorithm="HS256")
    async with app_client(supabase_jwt_secret="") as client:
        await assert_refused(client, bearer(token), 401, "unsupported token algorithm: HS256")


async def test_malformed_token(client: httpx.AsyncClient) -> None:
    await assert_refused(client, bearer("not-a-jwt"), 401, "malformed token")


async def test_anon_style_token_without_subject_is_refused(
    client: httpx.AsyncClient, settings: Settings, keys: KeyMaterial
) -> None:
    claims = {"iss": settings.jwt_issuer, "aud": "authenticated", "role": "anon", "exp": int(time.time()) + 60}
    token = jwt.encode(claims, keys.private_key_pem, algorithm="ES256", headers={"kid": keys.kid})
    await assert_refused(client, bearer(token), 401, "invalid token")


@pytest.mark.parametrize("header", ["Authorization", "apikey"])
async def test_secret_key_passes(client: httpx.AsyncClient, keys: KeyMaterial, header: str) -> None:
    value = f"Bearer {keys.secret_key}" if header == "Authorization" else keys.secret_key
    assert (await client.get(ENDPOINT, headers={header: value})).status_code == 200


async def test_wrong_secret_key(client: httpx.AsyncClient) -> None:
    await assert_refused(client, {"apikey": "sb_secret_not-the-right-one"}, 401, "invalid secret API key")


async def test_publishable_key_alone_is_not_enough(client: httpx.AsyncClient, keys: KeyMaterial) -> None:
    await assert_refused(client, {"apikey": keys.publishable_key}, 401, "missing bearer token")


async def test_demoted_admin_is_refused_by_their_profile(
    app_client: AppClient,
    token_for: Callable[..., str],
    make_user: Callable[[str], str],
) -> None:
    """A token still claiming admin after a demotion: the API reads the profile (as RLS does) and says no."""
    demoted = make_user("user")
    async with app_client() as client:
        response = await client.get("/v1/mappings/pending", headers=bearer(token_for(demoted, "admin")))
    assert response.status_code == 403
    assert response.json()["detail"] == "this endpoint is for admins; the caller's profile role is not admin"


def _hmac_token(header: dict[str, str], claims: dict[str, object], secret: bytes) -> str:
    """PyJWT refuses to HMAC with a PEM key (rightly); build the forged token by hand."""

    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    signing_input = b64(json.dumps(header).encode()) + b"." + b64(json.dumps(claims).encode())
    signature = hmac.new(secret, signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + b64(signature)).decode()

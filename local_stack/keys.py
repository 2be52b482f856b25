"""Local signing keys and API keys, created once per stack and kept under .local/keys."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

# The legacy HS256 secret every `supabase start` uses; local stacks only.
LOCAL_JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"  # noqa: S105


@dataclass(frozen=True)
class KeyMaterial:
    private_key_pem: bytes
    kid: str
    jwks: dict[str, list[dict[str, str]]]
    jwt_secret: str
    secret_key: str
    publishable_key: str
    upstash_token: str
    redis_password: str


def ensure_keys(keys_dir: Path) -> KeyMaterial:
    keys_dir.mkdir(parents=True, exist_ok=True)
    pem_path, meta_path, jwks_path = keys_dir / "es256.pem", keys_dir / "keys.json", keys_dir / "jwks.json"
    if not pem_path.exists():
        private_key = ec.generate_private_key(ec.SECP256R1())
        pem_path.write_bytes(
            private_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        pem_path.chmod(0o600)
        meta_path.write_text(
            json.dumps(
                {
                    "kid": secrets.token_hex(8),
                    "secret_key": f"sb_secret_{secrets.token_urlsafe(24)}",
                    "publishable_key": f"sb_publishable_{secrets.token_urlsafe(24)}",
                    "upstash_token": secrets.token_urlsafe(32),
                    "redis_password": secrets.token_urlsafe(32),
                }
            )
        )
    pem = pem_path.read_bytes()
    meta = json.loads(meta_path.read_text())
    if "redis_password" not in meta:  # stacks created before redis-server required a password
        meta["redis_password"] = secrets.token_urlsafe(32)
        meta_path.write_text(json.dumps(meta))
    private = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    public_jwk = json.loads(ECAlgorithm.to_jwk(private.public_key()))
    public_jwk.update({"kid": meta["kid"], "alg": "ES256", "use": "sig", "key_ops": ["verify"]})
    jwks = {"keys": [public_jwk]}
    jwks_path.write_text(json.dumps(jwks, indent=2))
    return KeyMaterial(
        private_key_pem=pem,
        kid=meta["kid"],
        jwks=jwks,
        jwt_secret=LOCAL_JWT_SECRET,
        secret_key=meta["secret_key"],
        publishable_key=meta["publishable_key"],
        upstash_token=meta["upstash_token"],
        redis_password=meta["redis_password"],
    )

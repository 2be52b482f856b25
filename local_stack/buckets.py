"""The Storage buckets supabase/config.toml declares, created in the local Storage stand-in by `kamioi up`
(a hosted project gets the same ones from `supabase seed buckets --linked`)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import httpx
from storage3.exceptions import StorageApiError
from storage3.types import CreateOrUpdateBucketOptions
from supabase import SupabaseStorageClient

from kamioi.settings import PROJECT_ROOT

CONFIG = PROJECT_ROOT / "supabase" / "config.toml"
UNITS = {"": 1, "B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "KIB": 1024, "MIB": 1024**2, "GIB": 1024**3}


def declared_buckets(config: Path = CONFIG) -> dict[str, dict[str, Any]]:
    with config.open("rb") as handle:
        parsed = tomllib.load(handle)
    buckets: dict[str, dict[str, Any]] = parsed.get("storage", {}).get("buckets", {})
    return buckets


def size_in_bytes(size: str | int) -> int:
    """config.toml's sizes ("1GiB", "50MB") as bytes."""
    if isinstance(size, int):
        return size
    match = re.fullmatch(r"\s*(\d+)\s*([KMG]i?B|B)?\s*", size, re.IGNORECASE)
    if match is None:
        raise ValueError(f"not a size: {size!r}")
    return int(match[1]) * UNITS[(match[2] or "").upper()]


def ensure_buckets(storage_url: str, secret_key: str, buckets: dict[str, dict[str, Any]]) -> list[str]:
    """Create the buckets that do not exist yet; returns their names."""
    headers = {"Authorization": f"Bearer {secret_key}", "apikey": secret_key}
    created = []
    with httpx.Client(timeout=10) as http:
        client = SupabaseStorageClient(storage_url.rstrip("/") + "/", headers, http_client=http)
        for name, declared in buckets.items():
            try:
                client.get_bucket(name)
                continue
            except StorageApiError:
                pass
            options: CreateOrUpdateBucketOptions = {"public": bool(declared.get("public", False))}
            if "file_size_limit" in declared:
                options["file_size_limit"] = size_in_bytes(declared["file_size_limit"])
            client.create_bucket(name, options=options)
            created.append(name)
    return created

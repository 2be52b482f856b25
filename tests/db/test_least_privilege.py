"""The attacks of issue 16 over a real connection as `authenticator`, the way PostgREST runs a request:
a token's role and claims set in the transaction, then SQL RLS cannot filter (TRUNCATE) or internals
the Data API never exposes (private functions). supabase/tests/090_least_privilege.sql checks the catalog."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from kamioi.db import connect, postgrest_request
from kamioi.settings import Settings

ATTACKS = {
    "truncate the LLM ledger": "truncate public.llm_calls",
    "truncate the catalog": "truncate public.merchant_catalog",
    "queue a job": "select private.enqueue_job('import')",
    "claim the queue's jobs": "select * from private.claim_jobs('attacker', array['import'], 60)",
}


@pytest.fixture
def authenticator(settings: Settings) -> Iterator[psycopg.Connection[Any]]:
    """PostgREST's login role (password from the local bootstrap); it can only become an API role."""
    with connect(make_conninfo(settings.db_url, user="authenticator", password="postgres")) as conn:
        yield conn


@pytest.mark.parametrize("who", ["anon", "user", "admin"])
@pytest.mark.parametrize("attack", list(ATTACKS))
def test_api_roles_are_refused(
    authenticator: psycopg.Connection[Any], admin_id: str, user_id: str, who: str, attack: str
) -> None:
    role, claims = (
        ("anon", None)
        if who == "anon"
        else ("authenticated", {"sub": admin_id if who == "admin" else user_id, "user_role": who})
    )
    with pytest.raises(psycopg.errors.InsufficientPrivilege), postgrest_request(authenticator, role, claims) as cur:
        cur.execute(ATTACKS[attack])

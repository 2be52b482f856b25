"""SQL injection strings in every text input of the admin API and of the RPCs the Data API exposes.

Structured inputs (ids, enums, cursors, dates, paths) must answer 4xx; free-text inputs (descriptors
to resolve, a merchant-key filter, a search box) are data, so they may succeed, and then must have
been taken literally. Either way no table changes (the module's data snapshot), and no probe may
make a request slow (the time-based ones sleep 3 s if they ever reach SQL as code).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx
import psycopg
import pytest
from fastapi import FastAPI

from api.cursors import CursorSigner
from api.main import create_app
from kamioi.db import postgrest_request
from kamioi.settings import Settings, get_settings
from tests.reliability.support import SQL_INJECTIONS

pytestmark = pytest.mark.usefixtures("data_untouched")

Request = tuple[str, str, dict[str, Any]]
VALID_AT = "2026-01-01T00:00:00+00:00"
REFUSED = frozenset({400, 401, 403, 404, 405, 409, 413, 422})
# The time-based probes sleep SLEEP_S if they ever run as SQL: compared with the same call on a harmless
# value, so a slow query on a big database is not mistaken for one.
SLEEPS, SLEEP_S, HARMLESS = "pg_sleep(3)", 3.0, "harmless value"


def signed(scope: str, *key: object) -> str:
    """A cursor this API signed (the same key from the same settings), carrying the probe."""
    return CursorSigner.from_settings(get_settings()).encode(scope, key)


def body(**fields: Any) -> dict[str, Any]:
    return {"json": fields}


BULK_FILTER_FIELDS = ("category", "source", "tier", "created_after", "created_before", "min_confidence")


def bulk_filter(field: str) -> Callable[[str], Request]:
    return lambda i: ("POST", "/v1/mappings/bulk-review", body(decision="rejected", filter={field: i}))


# name -> (build the request from the injected string, the statuses that are a correct answer)
API_CASES: dict[str, tuple[Callable[[str], Request], frozenset[int]]] = {
    "analytics months": (lambda i: ("GET", "/v1/analytics/categories", {"params": {"months": i}}), REFUSED),
    "analytics days": (lambda i: ("GET", "/v1/analytics/top-merchants", {"params": {"days": i}}), REFUSED),
    "analytics limit": (lambda i: ("GET", "/v1/analytics/top-merchants", {"params": {"limit": i}}), REFUSED),
    "throughput days": (lambda i: ("GET", "/v1/analytics/mapping-throughput", {"params": {"days": i}}), REFUSED),
    "activity grain": (lambda i: ("GET", "/v1/analytics/activity", {"params": {"grain": i}}), REFUSED),
    "activity days": (lambda i: ("GET", "/v1/analytics/activity", {"params": {"days": i}}), REFUSED),
    "activity months": (lambda i: ("GET", "/v1/analytics/activity", {"params": {"months": i}}), REFUSED),
    "tickers months": (lambda i: ("GET", "/v1/analytics/tickers", {"params": {"months": i}}), REFUSED),
    "imports cursor": (lambda i: ("GET", "/v1/imports", {"params": {"cursor": i}}), REFUSED),
    "imports cursor, well-formed": (
        lambda i: ("GET", "/v1/imports", {"params": {"cursor": signed("imports", i, 1)}}),
        REFUSED,
    ),
    "imports limit": (lambda i: ("GET", "/v1/imports", {"params": {"limit": i}}), REFUSED),
    "import id": (lambda i: ("GET", f"/v1/imports/{quote(i, safe='')}", {}), REFUSED),
    "cancel id": (lambda i: ("POST", f"/v1/imports/{quote(i, safe='')}/cancel", {}), REFUSED),
    "retry id": (lambda i: ("POST", f"/v1/imports/{quote(i, safe='')}/retry", {}), REFUSED),
    "retry force": (lambda i: ("POST", "/v1/imports/1/retry", {"params": {"force": i}}), REFUSED),
    "rejections id": (lambda i: ("GET", f"/v1/imports/{quote(i, safe='')}/rejections", {}), REFUSED),
    "rejections cursor": (lambda i: ("GET", "/v1/imports/1/rejections", {"params": {"cursor": i}}), REFUSED),
    "rejections limit": (lambda i: ("GET", "/v1/imports/1/rejections", {"params": {"limit": i}}), REFUSED),
    "rejections csv id": (lambda i: ("GET", f"/v1/imports/{quote(i, safe='')}/rejections.csv", {}), REFUSED),
    "rejections csv expires": (
        lambda i: ("GET", "/v1/imports/1/rejections.csv", {"params": {"expires": i, "signature": "A" * 22}}),
        REFUSED,
    ),
    "rejections csv signature": (
        lambda i: ("GET", "/v1/imports/1/rejections.csv", {"params": {"expires": "4000000000", "signature": i}}),
        REFUSED,
    ),
    "job id": (lambda i: ("GET", f"/v1/jobs/{quote(i, safe='')}", {}), REFUSED),
    "jobs state": (lambda i: ("GET", "/v1/jobs", {"params": {"state": i}}), REFUSED),
    "jobs kind": (lambda i: ("GET", "/v1/jobs", {"params": {"state": "failed", "kind": i}}), REFUSED),
    "jobs cursor": (lambda i: ("GET", "/v1/jobs", {"params": {"state": "failed", "cursor": i}}), REFUSED),
    "jobs cursor, well-formed": (
        lambda i: ("GET", "/v1/jobs", {"params": {"state": "failed", "cursor": signed("jobs:failed:", i)}}),
        REFUSED,
    ),
    "jobs limit": (lambda i: ("GET", "/v1/jobs", {"params": {"state": "failed", "limit": i}}), REFUSED),
    "pending cursor": (lambda i: ("GET", "/v1/mappings/pending", {"params": {"cursor": i}}), REFUSED),
    "pending cursor, well-formed": (
        lambda i: ("GET", "/v1/mappings/pending", {"params": {"cursor": signed("pending", VALID_AT, i)}}),
        REFUSED,
    ),
    "pending limit": (lambda i: ("GET", "/v1/mappings/pending", {"params": {"limit": i}}), REFUSED),
    "review id": (
        lambda i: ("POST", f"/v1/mappings/{quote(i, safe='')}/review", body(decision="approved", created_at=VALID_AT)),
        REFUSED,
    ),
    "review decision": (
        lambda i: ("POST", "/v1/mappings/1/review", body(decision=i, created_at=VALID_AT)),
        REFUSED,
    ),
    "review created_at": (
        lambda i: ("POST", "/v1/mappings/1/review", body(decision="approved", created_at=i)),
        REFUSED,
    ),
    "bulk decision": (lambda i: ("POST", "/v1/mappings/bulk-review", body(decision=i, filter={})), REFUSED),
    "bulk ids created_at": (
        lambda i: ("POST", "/v1/mappings/bulk-review", body(decision="approved", ids=[{"id": 1, "created_at": i}])),
        REFUSED,
    ),
    **{f"bulk filter {field}": (bulk_filter(field), REFUSED) for field in BULK_FILTER_FIELDS},
    # Free text: a merchant key may be any string; the filter must match it literally (202 queues a
    # job that matches nothing; the test cancels it).
    "bulk filter merchant_key": (
        lambda i: ("POST", "/v1/mappings/bulk-review", body(decision="rejected", filter={"merchant_key": i})),
        REFUSED | {202},
    ),
    "resolve descriptor": (
        lambda i: ("POST", "/v1/mappings/resolve", body(descriptors=[i, f"SQ *{i}"], save=False)),
        REFUSED | {200},
    ),
    "resolve save flag": (lambda i: ("POST", "/v1/mappings/resolve", body(descriptors=["X"], save=i)), REFUSED),
    "import kind": (lambda i: ("POST", "/v1/imports", body(kind=i, file_path="a.csv")), REFUSED),
    "import file_path": (lambda i: ("POST", "/v1/imports", body(kind="transactions", file_path=i)), REFUSED),
    "import storage bucket": (
        lambda i: ("POST", "/v1/imports", body(kind="transactions", storage_object={"bucket": i, "path": "a.csv"})),
        REFUSED,
    ),
    "import storage path": (
        lambda i: ("POST", "/v1/imports", body(kind="transactions", storage_object={"bucket": "b", "path": i})),
        REFUSED,
    ),
    "import force": (lambda i: ("POST", "/v1/imports", body(kind="transactions", file_path="a", force=i)), REFUSED),
    "upload kind": (lambda i: ("POST", "/v1/imports/upload", {"params": {"kind": i}}), REFUSED),
    "upload force": (lambda i: ("POST", "/v1/imports/upload", {"params": {"kind": "mappings", "force": i}}), REFUSED),
    # Free text reduced to a safe object name ([A-Za-z0-9._-]) under a random folder, never SQL; this
    # suite's Storage refuses every request, so signing is a 502 (the path it asked for stays in the bucket).
    "upload filename": (lambda i: ("POST", "/v1/imports/uploads", body(filename=i)), frozenset({422, 502})),
}


# The admin lists' filters, each injected alone. Free text (keys, prefixes, a search box) is data: a
# list answers 200 (nothing matches it), an export queues a job (202; the test cancels it).
LIST_FILTERS: dict[str, tuple[str, ...]] = {
    "transactions": ("status", "user_id", "merchant_key", "mapping_id", "import_job_id", "date_from", "date_to",
                     "amount_min", "amount_max"),
    "mappings": ("status", "admin_approved", "category", "source", "tier", "confidence_min", "confidence_max",
                 "merchant_key_prefix", "created_from", "created_to", "search"),
    "users": ("email_prefix", "role"),
}  # fmt: skip
FREE_TEXT = frozenset({"merchant_key", "merchant_key_prefix", "search", "email_prefix"})
LIST_PARAMS = {
    "transactions": ("cursor", "limit"),
    "mappings": ("cursor", "limit", "sort"),
    "users": ("cursor", "limit"),
}


def list_param(list_name: str, name: str) -> Callable[[str], Request]:
    return lambda i: ("GET", f"/v1/{list_name}", {"params": {name: i}})


def export_filter(list_name: str, name: str) -> Callable[[str], Request]:
    return lambda i: ("POST", "/v1/exports", body(list=list_name, filters={name: i}))


def export_id(suffix: str) -> Callable[[str], Request]:
    method = "POST" if suffix == "/cancel" else "GET"
    return lambda i: (method, f"/v1/exports/{quote(i, safe='')}{suffix}", {})


LIST_CASES: dict[str, tuple[tuple[str, str], Callable[[str], Request], frozenset[int]]] = {
    **{
        f"{list_name} {name}": ((f"/v1/{list_name}", name), list_param(list_name, name),
                                REFUSED | ({200} if name in FREE_TEXT else set()))
        for list_name, names in LIST_FILTERS.items()
        for name in names + LIST_PARAMS[list_name]
    },
    # An export's typed filters are the lists' own models (tried above); its free text reaches the job.
    **{
        f"export {list_name} {name}": (("/v1/exports", f"filters.{name}"), export_filter(list_name, name),
                                       REFUSED | {202})
        for list_name, names in LIST_FILTERS.items()
        for name in names if name in FREE_TEXT
    },
    "export list": (("/v1/exports", "list"), lambda i: ("POST", "/v1/exports", body(list=i)), REFUSED),
    "export sort": (("/v1/exports", "sort"), lambda i: ("POST", "/v1/exports", body(list="mappings", sort=i)), REFUSED),
    **{
        f"export id{suffix}": ((f"/v1/exports/{{export_id}}{suffix}", "export_id"), export_id(suffix), REFUSED)
        for suffix in ("", "/cancel", "/download")
    },
}  # fmt: skip
API_CASES |= {name: (build, allowed) for name, (_, build, allowed) in LIST_CASES.items()}


def covered_inputs() -> set[tuple[str, str]]:
    """(path template, input name) of every case above, to compare with the OpenAPI document."""
    names = {
        "analytics months": ("/v1/analytics/categories", "months"),
        "analytics days": ("/v1/analytics/top-merchants", "days"),
        "analytics limit": ("/v1/analytics/top-merchants", "limit"),
        "throughput days": ("/v1/analytics/mapping-throughput", "days"),
        "activity grain": ("/v1/analytics/activity", "grain"),
        "activity days": ("/v1/analytics/activity", "days"),
        "activity months": ("/v1/analytics/activity", "months"),
        "tickers months": ("/v1/analytics/tickers", "months"),
        "imports cursor": ("/v1/imports", "cursor"),
        "imports limit": ("/v1/imports", "limit"),
        "import id": ("/v1/imports/{import_id}", "import_id"),
        "cancel id": ("/v1/imports/{import_id}/cancel", "import_id"),
        "retry id": ("/v1/imports/{import_id}/retry", "import_id"),
        "retry force": ("/v1/imports/{import_id}/retry", "force"),
        "rejections id": ("/v1/imports/{import_id}/rejections", "import_id"),
        "rejections cursor": ("/v1/imports/{import_id}/rejections", "cursor"),
        "rejections limit": ("/v1/imports/{import_id}/rejections", "limit"),
        "rejections csv id": ("/v1/imports/{import_id}/rejections.csv", "import_id"),
        "rejections csv expires": ("/v1/imports/{import_id}/rejections.csv", "expires"),
        "rejections csv signature": ("/v1/imports/{import_id}/rejections.csv", "signature"),
        "job id": ("/v1/jobs/{job_id}", "job_id"),
        "jobs state": ("/v1/jobs", "state"),
        "jobs kind": ("/v1/jobs", "kind"),
        "jobs cursor": ("/v1/jobs", "cursor"),
        "jobs limit": ("/v1/jobs", "limit"),
        "pending cursor": ("/v1/mappings/pending", "cursor"),
        "pending limit": ("/v1/mappings/pending", "limit"),
        "review id": ("/v1/mappings/{mapping_id}/review", "mapping_id"),
        "review decision": ("/v1/mappings/{mapping_id}/review", "decision"),
        "review created_at": ("/v1/mappings/{mapping_id}/review", "created_at"),
        "bulk decision": ("/v1/mappings/bulk-review", "decision"),
        "bulk ids created_at": ("/v1/mappings/bulk-review", "ids.created_at"),
        "bulk filter merchant_key": ("/v1/mappings/bulk-review", "filter.merchant_key"),
        "resolve descriptor": ("/v1/mappings/resolve", "descriptors"),
        "resolve save flag": ("/v1/mappings/resolve", "save"),
        "import kind": ("/v1/imports", "kind"),
        "import file_path": ("/v1/imports", "file_path"),
        "import storage bucket": ("/v1/imports", "storage_object.bucket"),
        "import storage path": ("/v1/imports", "storage_object.path"),
        "import force": ("/v1/imports", "force"),
        "upload kind": ("/v1/imports/upload", "kind"),
        "upload force": ("/v1/imports/upload", "force"),
        "upload filename": ("/v1/imports/uploads", "filename"),
    }
    return (
        set(names.values())
        | {("/v1/mappings/bulk-review", f"filter.{f}") for f in BULK_FILTER_FIELDS}
        | {covered for covered, _, _ in LIST_CASES.values()}
        | {("/v1/exports", f"filters.{name}") for names in LIST_FILTERS.values() for name in names}
    )


def _fields(schema: dict[str, Any], components: dict[str, Any], prefix: str = "") -> set[str]:
    """Dotted names of the leaf fields of a JSON body schema (refs resolved, nullable unions unwrapped)."""
    if "$ref" in schema:
        return _fields(components[schema["$ref"].rsplit("/", 1)[-1]], components, prefix)
    for union in ("anyOf", "oneOf"):
        if union in schema:
            return set().union(*(_fields(s, components, prefix) for s in schema[union] if s.get("type") != "null"))
    if schema.get("type") == "array" and "$ref" in schema.get("items", {}):
        return _fields(schema["items"], components, prefix)
    if "properties" in schema:
        return set().union(*(_fields(s, components, f"{prefix}{name}.") for name, s in schema["properties"].items()))
    return {prefix.rstrip(".")}


def api_inputs(app: FastAPI) -> set[tuple[str, str]]:
    """Every parameter and body field of the authenticated /v1 API, from its OpenAPI document."""
    spec = app.openapi()
    components = spec["components"]["schemas"]
    found: set[tuple[str, str]] = set()
    for path, operations in spec["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for operation in operations.values():
            found |= {(path, p["name"]) for p in operation.get("parameters", []) if p["in"] in ("query", "path")}
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                found |= {(path, f) for f in _fields(content["application/json"]["schema"], components)}
    return found


def test_every_api_input_has_an_injection_case(api_settings: Settings) -> None:
    untested = api_inputs(create_app(api_settings)) - covered_inputs()
    # The remaining fields of a bulk filter and of the ids are numbers and bounds of the same shape.
    untested -= {
        ("/v1/mappings/bulk-review", "ids.id"),
        ("/v1/mappings/bulk-review", "filter.import_job_id"),
        ("/v1/mappings/bulk-review", "filter.max_confidence"),
    }
    assert not untested, f"API inputs without a SQL injection case: {sorted(untested)}"


def cancel_queued(owner_db: Any, path: str, response: httpx.Response) -> None:
    """A 202 queued a job (a bulk review or an export); cancel it before a worker runs it."""
    if response.status_code != 202:
        return
    if path == "/v1/exports":
        owner_db.execute("select private.cancel_export_job(%s)", (response.json()["id"],))
    else:
        owner_db.execute("select private.cancel_job(%s)", (response.json()["job_id"],))


@pytest.mark.parametrize("injection", SQL_INJECTIONS, ids=range(len(SQL_INJECTIONS)))
@pytest.mark.parametrize("case", API_CASES, ids=list(API_CASES))
async def test_api_input_refuses_or_takes_literally(
    case: str, injection: str, client: httpx.AsyncClient, admin_headers: dict[str, str], owner_db: Any
) -> None:
    build, allowed = API_CASES[case]
    method, path, kwargs = build(injection)
    started = time.monotonic()
    response = await client.request(method, path, headers=admin_headers, **kwargs)
    elapsed = time.monotonic() - started
    assert response.status_code in allowed, (case, injection, response.status_code, response.text)
    assert response.headers["content-type"].startswith(
        "application/problem+json" if response.status_code >= 400 else "application/json"
    )
    cancel_queued(owner_db, path, response)
    if SLEEPS in injection:
        method, path, kwargs = build(HARMLESS)
        started = time.monotonic()
        harmless = await client.request(method, path, headers=admin_headers, **kwargs)
        assert elapsed - (time.monotonic() - started) < SLEEP_S - 0.5, "an injected pg_sleep ran"
        cancel_queued(owner_db, path, harmless)
    if response.status_code == 200 and case == "resolve descriptor":
        # Taken as a descriptor, character for character (nothing saved: the module's data snapshot).
        results = response.json()["results"]
        assert [r["descriptor"] for r in results] == [injection, f"SQ *{injection}"]


@pytest.mark.parametrize("injection", [i for i in SQL_INJECTIONS if "\x00" not in i], ids=str)
@pytest.mark.parametrize("header", ["Authorization", "apikey", "X-Request-ID"])
async def test_headers(header: str, injection: str, client: httpx.AsyncClient, admin_headers: dict[str, str]) -> None:
    headers = {**admin_headers, header: injection} if header == "X-Request-ID" else {header: injection}
    response = await client.get("/v1/stats/dashboard", headers=headers)
    if header == "X-Request-ID":
        assert response.status_code == 200
        assert response.headers["x-request-id"] != injection, "an unsafe request id must not be echoed"
    else:
        assert response.status_code == 401


# PostgREST answers a failed RPC with the status its SQLSTATE maps to (docs.postgrest.org, "Errors").
def postgrest_status(sqlstate: str) -> int:
    exact = {"23503": 409, "23505": 409, "25006": 405, "42883": 404, "42P01": 404, "42501": 403, "P0001": 400,
             "53400": 500}  # fmt: skip
    if sqlstate in exact:
        return exact[sqlstate]
    by_class = {"08": 503, "53": 503, "0L": 403, "0P": 403, "28": 403}
    server = ("09", "25", "2D", "38", "39", "3B", "40", "54", "55", "57", "58", "F0", "HV", "XX")
    return by_class.get(sqlstate[:2], 500 if sqlstate[:2] in server else 400)


RPC_CALLS = {
    "search_mappings as admin": ("admin", "select * from public.search_mappings(%s)", True),
    "search_mappings as user": ("user", "select * from public.search_mappings(%s)", True),
    "review_mapping decision as admin": ("admin", f"select * from public.review_mapping(1, '{VALID_AT}', %s)", False),
    "review_mapping decision as user": ("user", f"select * from public.review_mapping(1, '{VALID_AT}', %s)", False),
    "transactions descriptor filter as user": (
        "user",
        "select * from public.transactions where descriptor = %s",
        True,
    ),
    "merchants key filter as user": ("user", "select * from public.merchants where merchant_key = %s", True),
    "access token hook as user": (
        "user",
        "select public.custom_access_token_hook(jsonb_build_object('user_id', %s::text, 'claims', '{}'::jsonb))",
        False,
    ),
}


@pytest.mark.parametrize("injection", [i for i in SQL_INJECTIONS if "\x00" not in i], ids=str)
@pytest.mark.parametrize("call", RPC_CALLS, ids=list(RPC_CALLS))
def test_rpc_text_parameters(
    call: str, injection: str, settings: Settings, admin_id: str, user_id: str, claims_for: Callable[..., Any]
) -> None:
    """The Data API's way in: a PostgREST-shaped transaction under the caller's claims."""
    who, sql, read_only = RPC_CALLS[call]
    claims = claims_for(admin_id) if who == "admin" else claims_for(user_id, "user")

    def run(value: str) -> tuple[float, list[dict[str, Any]] | psycopg.Error]:
        started = time.monotonic()
        with psycopg.connect(settings.db_url, autocommit=True) as conn:
            try:
                with postgrest_request(conn, "authenticated", claims, read_only=read_only) as cur:
                    outcome: list[dict[str, Any]] | psycopg.Error = cur.execute(sql, (value,)).fetchall()
            except psycopg.Error as error:
                outcome = error
        return time.monotonic() - started, outcome

    elapsed, outcome = run(injection)
    if isinstance(outcome, psycopg.Error):
        assert outcome.sqlstate is not None
        assert 400 <= postgrest_status(outcome.sqlstate) < 500, (call, outcome.sqlstate, str(outcome))
    else:
        # Allowed calls read: a search finds only names containing the string itself.
        assert all(injection.lower() in str(row.get("merchant_name", injection)).lower() for row in outcome)
        assert call.startswith(("search_mappings as admin", "transactions", "merchants")), (call, outcome)
    if SLEEPS in injection:
        assert elapsed - run(HARMLESS)[0] < SLEEP_S - 0.5, "an injected pg_sleep ran"

"""Property-based fuzzing of the OpenAPI document against the uvicorn process (small budget).

Every operation gets schema-valid requests as an admin: no response may be a 5xx, and every
response must be documented (status, content type, headers) and match its schema.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

EXAMPLES_PER_OPERATION = 12
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def fuzz_admin(make_user: Any, token_for: Any, owner_db: psycopg.Connection[Any]) -> Iterator[dict[str, str]]:
    admin = make_user("admin")
    started = owner_db.execute("select clock_timestamp()").fetchone()
    yield {"Authorization": f"Bearer {token_for(admin)}"}
    # The fuzzer queues imports (new ones, and failed ones it retries) and bulk reviews; leave no
    # work behind for a worker.
    owner_db.execute(
        "select private.cancel_import_job(id) from public.import_jobs where state = 'queued'"
        " and (created_by = %s or updated_at >= %s)",
        (admin, started[0] if started else None),
    )
    owner_db.execute(
        "delete from private.job_queue where kind = 'mappings.bulk_review' and payload->>'reviewer' = %s", (admin,)
    )


def test_every_operation_conforms_to_the_schema(api_server: str, fuzz_admin: dict[str, str]) -> None:
    schema = schemathesis.openapi.from_url(f"{api_server}/openapi.json")
    failures: list[str] = []
    results = list(schema.get_all_operations())
    assert all(isinstance(result, Ok) for result in results), "the OpenAPI document has invalid operations"
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) >= 15

    for operation in operations:

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        @given(case=operation.as_strategy(headers=fuzz_admin))
        def fuzz(case: Any) -> None:
            case.call_and_validate(base_url=api_server, checks=CHECKS, timeout=15)

        try:
            fuzz()
        except Exception as error:  # collect every operation's failure, not just the first
            failures.append(f"{operation.label}: {error}")
    assert not failures, "\n\n".join(failures)

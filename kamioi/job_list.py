"""The jobs view operators read (`GET /v1/jobs?state=...`, `kamioi jobs`): queue jobs by state, and the
mails that died, newest first in keyset pages on id (no count: a page never scans past its rows).

Queue states are the durable queue's (private.job_queue: a cancelled export is a cancelled `exports.csv`
job); `dead` is the mail outbox's (private.mail_outbox): a mail about a finished job that SMTP refused
until its last attempt. The SQL lives here so the API (async pool) and the CLI (a direct connection)
run the same statement.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

QueueState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
JobState = Literal["queued", "running", "succeeded", "failed", "cancelled", "dead"]
JOB_STATES: tuple[str, ...] = get_args(JobState)
MAIL_KIND = "mail"
MAX_PAGE = 100

_QUEUE_SQL = """
select id, kind, state, attempts, last_error, created_at, finished_at, payload, bad_input
from private.job_queue
where state = %(state)s and (%(kind)s::text is null or kind = %(kind)s) and id < %(before_id)s
order by id desc
limit %(limit)s
"""

_DEAD_MAIL_SQL = """
select id, 'mail' as kind, state, attempts, last_error, created_at, next_attempt_at as finished_at,
       jsonb_build_object('job_kind', job_kind, 'job_id', job_id, 'recipient', recipient,
                          'subject_state', details ->> 'state') as payload,
       false as bad_input
from private.mail_outbox
where state = 'dead' and (%(kind)s::text is null or %(kind)s = 'mail') and id < %(before_id)s
order by id desc
limit %(limit)s
"""


def job_list_query(state: str, kind: str | None, before_id: int | None, limit: int) -> tuple[str, dict[str, Any]]:
    """The statement and its parameters for one page; rows: id, kind, state, attempts, last_error,
    created_at, finished_at, payload, bad_input."""
    if state not in JOB_STATES:
        raise ValueError(f"state must be one of {', '.join(JOB_STATES)}")
    params = {
        "state": state,
        "kind": kind,
        "before_id": before_id if before_id is not None else 2**63 - 1,
        "limit": max(1, min(limit, MAX_PAGE)),
    }
    return (_DEAD_MAIL_SQL if state == "dead" else _QUEUE_SQL), params

"""Job kind `mail.deliver`: send the mails about finished jobs (private.mail_outbox) over SMTP.

A job that ends enqueues its mail with `private.enqueue_job_mail(job_kind, job_id, user_id, details)`
(migration 20261204300100), which also queues this job; pg_cron queues it every minute while a mail
is due. A run claims due mails in batches (each claim counts an attempt and leases the mail), sends
a batch over one SMTP connection, and records each outcome: sent, or failed with the error and
backed off (MAIL_RETRY_BASE_S doubling up to MAIL_RETRY_MAX_S) until MAIL_MAX_ATTEMPTS, when the
mail is dead. SMTP being down fails the mails, never this job; the run ends when nothing is due
and queues the next run for when the first retry falls due.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

import psycopg
from psycopg.rows import class_row

from jobs.context import JobContext
from jobs.registry import Outcome, job_handler
from kamioi.db import connect
from kamioi.settings import Settings
from kamioi.signed_links import signed_path

MAIL_DELIVER_KIND = "mail.deliver"
BATCH = 20
# A claimed mail is due again after this long (a worker killed mid-batch); a batch sends well within it.
SEND_LEASE_S = 120.0

# Detail keys the mail's text shows apart, not as "name: value" lines.
_STATE, _ERROR, _LINK = "state", "error", "link"
# jsonb keeps no key order: these come first, in this order, the rest alphabetically.
_FIRST = ("kind", "processed_rows", "inserted_rows", "updated_rows", "rejected_rows", "rows")


@dataclass(frozen=True)
class OutboxMail:
    id: int
    job_kind: str
    job_id: int
    recipient: str
    details: dict[str, Any]
    attempts: int
    created_at: datetime


@dataclass
class DeliveryRound:
    sent: int = 0
    failed: int = 0
    dead: int = 0

    def add(self, other: DeliveryRound) -> None:
        self.sent, self.failed, self.dead = self.sent + other.sent, self.failed + other.failed, self.dead + other.dead


# An import's rejections: mailed as the CSV's signed link, which opens without a token.
_REJECTIONS_PATH = re.compile(r"^/v1/imports/\d+/rejections$")


def link_url(link: str, settings: Settings) -> str:
    """A link that is a path is one under the admin API; an import's rejections become the signed
    link of their CSV (kamioi.signed_links), which a mail client opens without a token."""
    if not link.startswith("/"):
        return link
    base = (settings.mail_link_base_url or settings.api_url).rstrip("/")
    if _REJECTIONS_PATH.match(link) and (signed := signed_path(settings, link + ".csv")):
        return base + signed
    return base + link


def needs_token(url: str, settings: Settings) -> bool:
    base = (settings.mail_link_base_url or settings.api_url).rstrip("/")
    return url.startswith(base + "/v1/") and "signature=" not in url


def render(mail: OutboxMail, settings: Settings) -> EmailMessage:
    details = mail.details
    state = str(details.get(_STATE) or "finished")
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = mail.recipient
    message["Subject"] = f"Kamioi: {mail.job_kind} job {mail.job_id} {state}"
    message["Date"] = format_datetime(mail.created_at)
    message["Message-ID"] = make_msgid(idstring=f"kamioi-mail-{mail.id}")
    lines = [f"Your {mail.job_kind} job {mail.job_id} ended: {state}.", ""]
    for key in sorted(details, key=lambda k: (_FIRST.index(k) if k in _FIRST else len(_FIRST), k)):
        value = details[key]
        if key not in (_STATE, _ERROR, _LINK) and value is not None:
            shown = f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else value
            lines.append(f"{key.replace('_', ' ')}: {shown}")
    if details.get(_ERROR):
        lines += ["", f"error: {details[_ERROR]}"]
    if details.get(_LINK):
        url = link_url(str(details[_LINK]), settings)
        lines += ["", f"with an admin token: {url}" if needs_token(url, settings) else url]
    message.set_content("\n".join(lines) + "\n")
    return message


def _smtp_session(settings: Settings) -> smtplib.SMTP:
    session = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_s)
    try:
        if settings.smtp_starttls:
            session.starttls(context=ssl.create_default_context())
        if settings.smtp_username:
            session.login(settings.smtp_username, settings.smtp_password)
    except BaseException:
        session.close()
        raise
    return session


def _record_failure(conn: psycopg.Connection[Any], mail: OutboxMail, error: Exception, settings: Settings) -> str:
    row = conn.execute(
        "select private.record_mail_failure(%s, %s, %s, %s, %s, %s)",
        (
            mail.id,
            mail.attempts,
            f"{type(error).__name__}: {error}",
            settings.mail_max_attempts,
            settings.mail_retry_base_s,
            settings.mail_retry_max_s,
        ),
    ).fetchone()
    return str(row[0]) if row and row[0] else "lost"


def deliver_batch(
    conn: psycopg.Connection[Any], settings: Settings, *, only_ids: list[int] | None = None
) -> tuple[int, DeliveryRound]:
    """Claim up to BATCH due mails and send them; returns how many were claimed and what happened."""
    with conn.cursor(row_factory=class_row(OutboxMail)) as cur:
        mails = cur.execute(
            "select id, job_kind, job_id, recipient, details, attempts, created_at"
            " from private.claim_due_mails(%s, %s, %s)",
            (BATCH, SEND_LEASE_S, only_ids),
        ).fetchall()
    outcome = DeliveryRound()
    if not mails:
        return 0, outcome
    try:
        session = _smtp_session(settings)
    except (OSError, smtplib.SMTPException) as error:
        for mail in mails:
            outcome.dead += _record_failure(conn, mail, error, settings) == "dead"
        outcome.failed = len(mails)
        return len(mails), outcome
    with session:
        for mail in mails:
            try:
                session.send_message(render(mail, settings))
            except (OSError, smtplib.SMTPException) as error:
                outcome.failed += 1
                outcome.dead += _record_failure(conn, mail, error, settings) == "dead"
            else:
                conn.execute("select private.record_mail_sent(%s, %s)", (mail.id, mail.attempts))
                outcome.sent += 1
    return len(mails), outcome


def schedule_next_run(conn: psycopg.Connection[Any]) -> None:
    """Queue a run for when the first pending mail falls due, unless one is queued already."""
    conn.execute(
        "select private.enqueue_job(%s, '{}'::jsonb, 0, due)"
        " from (select private.next_mail_due_at() as due) as next"
        " where due is not null"
        "   and not exists (select 1 from private.job_queue where kind = %s and state = 'queued')",
        (MAIL_DELIVER_KIND, MAIL_DELIVER_KIND),
    )


@job_handler(MAIL_DELIVER_KIND)
def deliver_mail(ctx: JobContext) -> Outcome:
    settings = ctx.settings
    total = DeliveryRound()
    with connect(ctx.db_url, autocommit=True) as conn:
        while True:
            if (outcome := ctx.interruption(f"mail {ctx.job.id}")) is not None:
                return outcome
            claimed, batch = deliver_batch(conn, settings)
            total.add(batch)
            if claimed < BATCH:
                break
        schedule_next_run(conn)
    if total.failed:
        ctx.log.warning("mail job %s: %s sent, %s failed (%s dead)", ctx.job.id, total.sent, total.failed, total.dead)
    else:
        ctx.log.info("mail job %s: %s sent", ctx.job.id, total.sent)
    return Outcome.SUCCEEDED

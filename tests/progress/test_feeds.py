"""Job progress feeds: LISTEN on the database, and realtime-py against a local Realtime protocol server."""

from __future__ import annotations

import json
import random
from typing import Any

import psycopg
import pytest

from kamioi.db import connect
from kamioi.progress import ListenFeed, open_job_progress
from kamioi.realtime_feed import FeedUnavailable, RealtimeFeed
from kamioi.settings import Settings
from local_stack.standins.realtime_server import serve_in_thread

TOPIC, EVENT = "admin:imports", "import_progress"


def publish(conn: psycopg.Connection[Any], job_id: int, processed: int) -> None:
    conn.execute(
        "select private.publish_job_progress(%s, %s, %s::jsonb)",
        (TOPIC, EVENT, json.dumps({"id": job_id, "state": "running", "processed_rows": processed})),
    )


@pytest.fixture
def job_id() -> int:
    # No real import has a negative id: messages of jobs running meanwhile never match.
    return -random.randint(1, 2**40)


def test_listen_feed_gets_its_jobs_committed_progress_in_order(settings: Settings, job_id: int) -> None:
    with (
        connect(settings.db_url) as writer,
        ListenFeed(settings.db_url, topic=TOPIC, event=EVENT, job_id=job_id) as feed,
    ):
        publish(writer, job_id, 10)
        publish(writer, job_id + 1, 99)  # another job's
        assert feed.next(timeout=0.3) is None, "nothing is delivered before the commit"
        publish(writer, job_id, 20)
        writer.commit()
        assert [feed.next(timeout=5), feed.next(timeout=5)] == [
            {"id": job_id, "state": "running", "processed_rows": 10},
            {"id": job_id, "state": "running", "processed_rows": 20},
        ]
        assert feed.next(timeout=0.2) is None


def test_an_overlong_error_is_cut_to_fit_a_notification(settings: Settings, job_id: int) -> None:
    with (
        connect(settings.db_url, autocommit=True) as writer,
        ListenFeed(settings.db_url, topic=TOPIC, event=EVENT, job_id=job_id) as feed,
    ):
        payload = {"id": job_id, "state": "failed", "error": "x" * 20_000}
        writer.execute("select private.publish_job_progress(%s, %s, %s::jsonb)", (TOPIC, EVENT, json.dumps(payload)))
        got = feed.next(timeout=5)
    assert got is not None and got["state"] == "failed" and got["error"] == "x" * 1000


def test_realtime_feed_follows_the_private_channel(settings: Settings, job_id: int) -> None:
    with serve_in_thread(settings.db_url, settings.supabase_secret_key) as realtime_url:
        configured = settings.model_copy(update={"supabase_realtime_url": realtime_url})
        with open_job_progress(configured, settings.db_url, topic=TOPIC, event=EVENT, job_id=job_id) as feed:
            assert isinstance(feed, RealtimeFeed)
            with connect(settings.db_url, autocommit=True) as writer:
                publish(writer, job_id + 1, 5)
                publish(writer, job_id, 7)
            assert feed.next(timeout=5) == {"id": job_id, "state": "running", "processed_rows": 7}
            assert feed.next(timeout=0.2) is None


def test_realtime_refuses_a_private_channel_without_the_key(settings: Settings, job_id: int) -> None:
    with serve_in_thread(settings.db_url, settings.supabase_secret_key) as realtime_url, pytest.raises(FeedUnavailable):
        RealtimeFeed(realtime_url, "sb_secret_wrong", topic=TOPIC, event=EVENT, job_id=job_id)

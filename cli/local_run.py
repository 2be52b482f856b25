"""Run it here unless a worker serves it: the CLI's commands queue jobs like the API does, and when no
live worker takes that kind (no `kamioi up`, or `--kind` workers elsewhere) they run the job in this
process instead of waiting for nobody."""

from __future__ import annotations

import sys
import threading
from typing import Any

import psycopg

from jobs.inline import InlineRun
from jobs.queue import live_workers
from kamioi.settings import Settings


def worker_serves(conn: psycopg.Connection[Any], kind: str, settings: Settings) -> bool:
    """A worker that takes `kind` has heartbeated within three leases (a dead one has not)."""
    return live_workers(conn, kind, 3 * settings.lease_seconds) > 0


def run_here_unless_served(
    conn: psycopg.Connection[Any], db_url: str, queue_job_id: int, kind: str, settings: Settings,
    *, wait: bool = True,
) -> bool:  # fmt: skip
    """Run the queued job in this process when no worker serves its kind: to its end (`wait`), or on a
    background thread while the caller follows its progress. Returns whether it runs here."""
    if worker_serves(conn, kind, settings):
        return False
    print(f"  (no worker serves {kind} jobs: running it here)", file=sys.stderr, flush=True)
    run = InlineRun(db_url, queue_job_id, settings)
    if wait:
        run.run()
    else:
        threading.Thread(target=run.run, name=f"inline-{kind}", daemon=True).start()
    return True
